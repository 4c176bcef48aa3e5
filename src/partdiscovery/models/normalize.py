"""The input normaliser every network of :mod:`partdiscovery.models` applies to images in [0, 1].

Why one module: backbones and feature extractors all take images in [0, 1] and normalise them with the
statistics their weights were trained with; one implementation means one arithmetic, ``(x - mean) / std``
per channel, wherever the statistics differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet statistics of torchvision's weights (ResNet-50, VGG19) and of DINO."""
HALF = (0.5, 0.5, 0.5)
"""Mean and std of the TensorFlow EfficientNet-Lite weights: maps [0, 1] to [-1, 1]."""


class Normalize(nn.Module):
    """``images [B, 3, H, W]`` in [0, 1] -> ``(images - mean) / std`` per channel.

    The statistics are non-persistent buffers: they follow the module's device and dtype but are not
    written to checkpoints (they are part of the architecture, not of the weights).

    Example:
        >>> Normalize(IMAGENET_MEAN, IMAGENET_STD)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(tuple(mean)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(tuple(std)).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std
