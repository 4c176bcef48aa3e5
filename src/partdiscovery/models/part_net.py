"""The segmentation network f = backbone -> light FPN decoder -> part logits at input resolution."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.config import ModelConfig
from partdiscovery.models.backbones import create_backbone


@dataclass
class PartOutput:
    """Output of :class:`PartSegmentationNet`.

    Attributes:
        logits: ``[B, K, H, W]`` part logits (softmax over K gives the part maps).
        background_logits: ``[B, 1, H, W]`` foreground-vs-background logit (positive = background),
            only when the model has a learned background; ``None`` otherwise.
    """

    logits: torch.Tensor
    background_logits: torch.Tensor | None = None

    @property
    def part_probs(self) -> torch.Tensor:
        return self.logits.softmax(dim=1)


def part_probabilities(
    logits: torch.Tensor, background_logits: torch.Tensor | None = None, fg_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """f's outputs as what ``predict`` draws: ``[B, K+1, H, W]`` probabilities, channel 0 the background.

    The background is ``1 - fg_mask`` where a mask is given (it takes precedence), else the learned background's
    sigmoid, else 0; the part channels are the part softmax times (1 - background). ``logits`` ``[B, K, H, W]``,
    ``background_logits`` ``[B, 1, H, W]``, ``fg_mask`` ``[B, 1, H, W]`` in [0, 1]. Shared by the segmenter and by
    self-training's teacher, so that the teacher's targets are the parts a user gets.
    """
    if fg_mask is not None:
        background = 1.0 - fg_mask.to(logits)
    elif background_logits is not None:
        background = background_logits.sigmoid()
    else:
        background = torch.zeros_like(logits[:, :1])
    return torch.cat([background, logits.softmax(dim=1) * (1 - background)], dim=1)


class FPNDecoder(nn.Module):
    """Top-down feature pyramid: 1x1 laterals, upsample-and-add, one 3x3 conv at the finest level."""

    def __init__(self, in_channels: list[int], channels: int) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.laterals[-1](features[-1])
        for lateral, fmap in zip(reversed(self.laterals[:-1]), reversed(features[:-1])):
            x = F.interpolate(x, size=fmap.shape[-2:], mode="bilinear", align_corners=False) + lateral(fmap)
        return self.fuse(x)


class PartSegmentationNet(nn.Module):
    """f: image ``[B, 3, H, W]`` in [0, 1] -> :class:`PartOutput` with logits at ``H x W``.

    A backbone that already ends in its own classifier (``head_included = True``, e.g. DeepLab-v2)
    is used as is; otherwise an FPN decoder and a 1x1 classifier are added.

    Example:
        >>> net = PartSegmentationNet(ModelConfig(num_parts=4, pretrained=False))
        >>> net(torch.rand(2, 3, 128, 128)).logits.shape
        torch.Size([2, 4, 128, 128])
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_parts = cfg.num_parts
        out_channels = cfg.num_parts + (1 if cfg.learned_background else 0)
        self.backbone = create_backbone(cfg.backbone, pretrained=cfg.pretrained, weights=cfg.backbone_weights)
        if self.backbone.head_included:
            self.backbone.set_num_classes(out_channels)
            self.decoder, self.classifier = None, None
        else:
            self.decoder = FPNDecoder(self.backbone.channels, cfg.decoder_channels)
            self.classifier = nn.Conv2d(cfg.decoder_channels, out_channels, 1)

    def train(self, mode: bool = True) -> PartSegmentationNet:
        super().train(mode)
        if mode and self.cfg.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the head learning rate (the paper: 10x the backbone's)."""
        if self.decoder is None:
            return list(self.backbone.head_parameters())
        return list(self.decoder.parameters()) + list(self.classifier.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def forward(self, images: torch.Tensor) -> PartOutput:
        if self.decoder is None:
            logits = self.backbone(images)
        else:
            logits = self.classifier(self.decoder(self.backbone(images)))
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        if self.cfg.learned_background:
            return PartOutput(logits[:, 1:], logits[:, :1])
        return PartOutput(logits)
