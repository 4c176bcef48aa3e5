"""Methods own what is trained and how its losses are computed; the trainer knows nothing about parts.

A method is an ``nn.Module`` with

- ``training_step(batch, generator) -> dict[str, Tensor]`` named losses, including ``total``;
- ``net``: the :class:`~partdiscovery.models.PartSegmentationNet` used at inference;
- ``param_groups(optim_cfg)``: optimiser parameter groups (e.g. a 10x head learning rate);
- ``feature_cache(device)``: a φ feature cache for the training set, or None (then batches hold no
  ``features`` and the step runs φ itself).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.config import Config, OptimConfig
from partdiscovery.data.augment import REFERENCE_FILL, photometric_jitter, random_warp_grid, warp
from partdiscovery.errors import ConfigError
from partdiscovery.losses import (
    contrastive_loss,
    equivariance_loss,
    feature_loss,
    rgb_to_lab,
    visual_consistency_loss,
)
from partdiscovery.models import PartSegmentationNet, create_feature_extractor
from partdiscovery.utils.distributed import Shard, all_gather_with_grad
from partdiscovery.utils.registry import Registry

METHODS: Registry[nn.Module] = Registry("method")


def list_methods() -> list[str]:
    return METHODS.names()


def create_method(cfg: Config) -> nn.Module:
    return METHODS.build(cfg.method, cfg)


def downsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    return x if stride == 1 else F.avg_pool2d(x, stride)


class FrozenFeaturesMixin:
    """Shared plumbing of methods that use a frozen φ.

    Keeps φ out of ``state_dict`` and the optimiser (it is frozen and rebuilt from its registry name,
    so checkpoints stay small: VGG19 alone is 550 MB), and lets the trainer run f through a wrapper
    such as DistributedDataParallel without changing the checkpoint keys."""

    def _set_phi(self, phi: nn.Module) -> None:
        object.__setattr__(self, "phi", phi)

    def wrap_net(self, wrapper) -> None:
        """Run f through ``wrapper(net)`` in training (e.g. DistributedDataParallel), without
        registering the wrapper, so ``state_dict`` keys stay ``net.*``."""
        object.__setattr__(self, "_net_runner", wrapper(self.net))

    def run_net(self, images: torch.Tensor):
        # channels-last: the convolutions of f run ~18% faster on CPU (benchmarks/speed.py), same results.
        runner = getattr(self, "_net_runner", None)
        images = images.contiguous(memory_format=torch.channels_last)
        return (self.net if runner is None else runner)(images)

    def features(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """φ features of ``images`` at ``size``; φ sees the images resized by
        ``cfg.loss.feature_input_scale`` (finer feature maps than f's input alone would give)."""
        scale = self.cfg.loss.feature_input_scale
        if scale != 1.0:
            images = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        return self.phi(images, size)

    def feature_cache(self, device: torch.device | str = "cpu"):
        """A :class:`~partdiscovery.data.feature_cache.FeatureCache` of φ for the training set when
        ``loss.cache_features`` is on (else None). φ sees each letterboxed image at the side of the
        in-memory image cache (:func:`~partdiscovery.data.transforms.default_cache_side`) times
        ``loss.feature_input_scale``."""
        if not self.cfg.loss.cache_features:
            return None
        from partdiscovery.data.feature_cache import FeatureCache
        from partdiscovery.data.transforms import default_cache_side

        data = self.cfg.data
        if data.num_workers > 0:
            raise ConfigError(
                "loss.cache_features=true needs data.num_workers=0 (the cache lives in one process)"
            )
        side = default_cache_side(data) * self.cfg.loss.feature_input_scale
        return FeatureCache(self.phi, round(side), device)

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .float() also move φ
        if getattr(self, "phi", None) is not None:
            self.phi._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)


@METHODS.register("contrastive_reconstruction")
class ContrastiveReconstruction(FrozenFeaturesMixin, nn.Module):
    """Choudhury et al. 2021: feature + contrastive + visual consistency + equivariance losses.

    One training step (B images with masks M):

    1. two photometrically jittered views x1, x2 of each image, and a random warp T;
    2. part logits of x1 and of T(x2) from f; φ features of the clean image (no grad);
    3. ``R = softmax(f(x1)) * M`` at the loss resolution, the four losses, their weighted sum.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = PartSegmentationNet(cfg.model).to(memory_format=torch.channels_last)
        self._set_phi(
            create_feature_extractor(
                cfg.model.feature_extractor,
                pretrained=cfg.model.pretrained,
                weights=cfg.model.feature_weights,
                normalize=cfg.loss.normalize_features,
                layer_weights=cfg.model.feature_layers,
            )
        )

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        return [
            {"params": self.net.backbone_parameters(), "lr": optim.backbone_lr, "name": "backbone"},
            {"params": self.net.head_parameters(), "lr": optim.lr, "name": "head"},
        ]

    def training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None = None
    ) -> dict[str, torch.Tensor]:
        """Named losses of one step. ``shard``: this process's slice of the global batch (distributed)."""
        cfg = self.cfg.loss
        images, fg_mask = batch["image"], batch["fg_mask"]
        b, _, h, w = images.shape
        stride = cfg.loss_stride
        g = generator

        view1 = photometric_jitter(images, self.cfg.data.jitter, g, shard).to(images)
        view2 = photometric_jitter(images, self.cfg.data.jitter, g, shard).to(images)
        grid = random_warp_grid(
            b, h, w, g, cfg.tps_sigma, cfg.rotation_deg, cfg.zoom_range, cfg.translation, shard=shard
        ).to(images)
        # One forward pass of f over both views (x1 and T(x2)) keeps BatchNorm statistics consistent
        # (the reference runs two passes). The warped view is padded with the mean colour, as the
        # reference's zero padding of mean-subtracted images.
        out = self.run_net(torch.cat([view1, warp(view2, grid, fill=REFERENCE_FILL)]))
        logits1, logits2 = downsample(out.logits, stride).split(b)

        small = (h // stride, w // stride)
        mask = downsample(fg_mask, stride)
        features = batch["features"] if "features" in batch else self.features(images, small)
        probs1 = logits1.softmax(dim=1)
        assign = probs1 * mask

        losses: dict[str, torch.Tensor] = {}
        losses["feature"], prototypes = feature_loss(assign, features, mask)
        if shard is None or shard.is_whole:
            losses["contrastive"] = contrastive_loss(prototypes, cfg.temperature, generator=g)
        else:  # negatives and positives from the global batch, gradients back to every process
            losses["contrastive"] = contrastive_loss(
                prototypes,
                cfg.temperature,
                generator=g,
                all_prototypes=all_gather_with_grad(prototypes),
                anchor_offset=shard.offset,
            )
        losses["visual"] = visual_consistency_loss(assign, downsample(rgb_to_lab(images), stride), mask)

        # As the reference: warp the logits, then softmax; weight pixels by the soft warped mask.
        target = warp(logits1.detach(), grid).softmax(dim=1)
        losses["equivariance"] = equivariance_loss(logits2.log_softmax(dim=1), target, warp(mask, grid))

        total = (
            cfg.feature * losses["feature"]
            + cfg.contrastive * losses["contrastive"]
            + cfg.visual * losses["visual"]
            + cfg.equivariance * losses["equivariance"]
        )
        if out.background_logits is not None:
            bg1, bg2 = out.background_logits.split(b)
            warped_mask = warp(fg_mask, grid)
            losses["background"] = 0.5 * (
                F.binary_cross_entropy_with_logits(bg1, 1 - fg_mask)
                + F.binary_cross_entropy_with_logits(bg2, 1 - (warped_mask > 0.5).to(fg_mask))
            )
            total = total + cfg.background * losses["background"]
        losses["total"] = total
        return losses
