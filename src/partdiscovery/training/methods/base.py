"""The method contract, the method registry, and the plumbing the methods share.

A method owns what is trained and how its losses are computed; the trainer knows nothing about parts.
It is an ``nn.Module`` satisfying :class:`Method`. The methods here train f against a frozen feature
extractor φ and share :class:`FrozenFeaturesMethod`: φ kept out of checkpoints and the optimiser, f run
through an optional wrapper (DistributedDataParallel), the random views of a step, the optional φ
feature cache and the learned-background loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import cv2
import kornia
import torch
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.config import Config, OptimConfig
from partdiscovery.data.augment import photometric_jitter, random_warp_grid, warp
from partdiscovery.errors import ConfigError
from partdiscovery.losses import background_loss
from partdiscovery.models import PartOutput, PartSegmentationNet, create_feature_extractor
from partdiscovery.utils.distributed import Shard
from partdiscovery.utils.registry import Registry


@runtime_checkable
class Method(Protocol):
    """What the trainer (:class:`~partdiscovery.training.Trainer`) and :func:`~partdiscovery.training.
    train_step` need from a method, besides ``nn.Module``'s ``to``, ``train``, ``parameters``,
    ``buffers``, ``state_dict`` and ``load_state_dict``.

    Attributes:
        cfg: the config the method was built from, completed where the method needs it (SCOPS always
            has a learned background); the run folder and its checkpoints record this one, so that
            :meth:`PartSegmenter.load <partdiscovery.segmenter.PartSegmenter.load>` rebuilds the
            network that was trained.
        net: f, the :class:`~partdiscovery.models.PartSegmentationNet` used at inference; the
            checkpoint's ``net.*`` entries.
    """

    cfg: Config
    net: PartSegmentationNet

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        """Optimiser parameter groups (e.g. a 10x head learning rate); the trainer logs the last one's
        learning rate."""
        ...

    def training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None = None
    ) -> dict[str, torch.Tensor]:
        """Named losses of one step, including ``total``. ``generator`` draws every random choice of
        the step; ``shard`` is this process's slice of the global batch in a distributed run."""
        ...

    def feature_cache(self, device: torch.device | str = "cpu", step: int = 0) -> Any:
        """The per-image maps that the batches of steps ``step, ...`` carry, cropped like the images: a φ
        :class:`~partdiscovery.data.feature_cache.FeatureCache`, self-training's
        :class:`~partdiscovery.data.feature_cache.PartLabelCache` (from ``train.steps - train.self_train_steps``
        on; the trainer asks again at the first step of every phase, :mod:`partdiscovery.training.phases`), or None
        (then batches hold no ``features`` and the step runs φ itself)."""
        ...

    def wrap_net(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Run f through ``wrapper(net)`` in training (e.g. DistributedDataParallel) without changing
        the state dict's keys."""
        ...

    def run_net(self, images: torch.Tensor) -> PartOutput:
        """f (or its wrapper) on ``[B, 3, H, W]`` images."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]: ...


METHODS: Registry[Method] = Registry("method")


def list_methods() -> list[str]:
    return METHODS.names()


def create_method(cfg: Config) -> Method:
    """The method ``cfg.method`` built from ``cfg`` (which it does not modify)."""
    return METHODS.build(cfg.method, cfg)


def downsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, H / stride, W / stride]`` by average pooling (the loss resolution)."""
    return x if stride == 1 else F.avg_pool2d(x, stride)


def erode(mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """``[B, 1, H, W]`` foreground in [0, 1] eroded by a disc of radius ``fraction`` of the longer side
    (rounded to whole pixels; 0 px: unchanged). The image's edge does not erode it (kornia's geodesic
    border), as OpenCV's ``erode`` on a mask file."""
    radius = round(fraction * max(mask.shape[-2:]))
    if radius <= 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return kornia.morphology.erosion(mask, torch.from_numpy(disc).to(mask))


def build_phi(cfg: Config, normalize: bool, layers: tuple[float, ...] | None = None) -> nn.Module:
    """The frozen φ of ``cfg.model`` (``normalize``: L2-normalise each layer per pixel) with
    ``cfg.model.feature_layers``, or with ``layers`` when given."""
    return create_feature_extractor(
        cfg.model.feature_extractor,
        pretrained=cfg.model.pretrained,
        weights=cfg.model.feature_weights,
        normalize=normalize,
        layer_weights=layers if layers is not None else cfg.model.feature_layers,
    )


def net_param_groups(net: PartSegmentationNet, optim: OptimConfig, *extra: dict) -> list[dict]:
    """``[backbone, *extra, head]`` groups at ``optim.backbone_lr`` and ``optim.lr``: the head last, as
    the trainer logs the last group's learning rate."""
    return [
        {"params": net.backbone_parameters(), "lr": optim.backbone_lr, "name": "backbone"},
        *extra,
        {"params": net.head_parameters(), "lr": optim.lr, "name": "head"},
    ]


class FrozenFeaturesMethod(nn.Module):
    """Base of the methods that train f against a frozen φ.

    φ is held in a plain dict (``_unregistered``), not as a submodule: so it is not in ``state_dict``
    (it is frozen and rebuilt from its registry name, and checkpoints stay small: VGG19 alone is
    550 MB), not in ``parameters()`` and not switched to training mode by ``train()``. The one thing a
    submodule would get for free, following ``.to()``, ``.cuda()`` and ``.double()``, is forwarded by
    :meth:`_apply`, the single method ``nn.Module`` routes all of them through. The same dict holds
    f's training wrapper (:meth:`wrap_net`), whose ``module.*`` keys must not enter the state dict.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self._unregistered: dict[str, Any] = {}
        self.cfg = cfg

    @property
    def phi(self) -> nn.Module:
        return self._unregistered["phi"]

    def _set_phi(self, phi: Callable) -> None:
        """Set φ (subclasses: after building f, whose random initialisation draws from the global RNG
        first)."""
        self._unregistered["phi"] = phi

    def _apply(self, fn, *args, **kwargs):
        phi = self._unregistered.get("phi")
        if isinstance(phi, nn.Module):
            phi._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def wrap_net(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Run f through ``wrapper(net)`` in training (e.g. DistributedDataParallel), without
        registering the wrapper, so ``state_dict`` keys stay ``net.*``."""
        if self.cfg.loss.separate_view_passes:
            # DistributedDataParallel expects one forward per backward.
            raise ConfigError(
                "loss.separate_view_passes=true runs f twice a step; it cannot be combined with "
                "distributed training (use the default one pass)"
            )
        self._unregistered["net_runner"] = wrapper(self.net)

    def run_net(self, images: torch.Tensor) -> PartOutput:
        # channels-last: the convolutions of f run ~18% faster on CPU (benchmarks/speed.py), same results.
        images = images.contiguous(memory_format=torch.channels_last)
        return self._unregistered.get("net_runner", self.net)(images)

    def run_views(self, view1: torch.Tensor, view2: torch.Tensor) -> PartOutput:
        """f on two ``[B, 3, H, W]`` views of one batch, outputs concatenated (view1 first): one forward
        pass over both, or two with ``loss.separate_view_passes`` (each view its own BatchNorm batch)."""
        if not self.cfg.loss.separate_view_passes:
            return self.run_net(torch.cat([view1, view2]))
        out1, out2 = self.run_net(view1), self.run_net(view2)
        background = None
        if out1.background_logits is not None:
            background = torch.cat([out1.background_logits, out2.background_logits])
        return PartOutput(torch.cat([out1.logits, out2.logits]), background)

    def features(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """φ features of ``images`` at ``size``; φ sees the images resized by
        ``cfg.loss.feature_input_scale`` (finer feature maps than f's input alone would give)."""
        scale = self.cfg.loss.feature_input_scale
        if scale != 1.0:
            images = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        return self.phi(images, size)

    def target_features(self, batch: dict, size: tuple[int, int]) -> torch.Tensor:
        """``[B, C, *size]`` φ features of the batch's clean images: from the feature cache when the
        loader put them in the batch, else computed now."""
        return batch["features"] if "features" in batch else self.features(batch["image"], size)

    def feature_cache(self, device: torch.device | str = "cpu", step: int = 0):
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

    def jitter(self, images: torch.Tensor, generator: torch.Generator, shard: Shard | None) -> torch.Tensor:
        """A photometrically jittered view of ``[B, 3, H, W]`` images (``cfg.data.jitter``)."""
        return photometric_jitter(images, self.cfg.data.jitter, generator, shard).to(images)

    def random_warp(
        self, images: torch.Tensor, generator: torch.Generator, shard: Shard | None
    ) -> torch.Tensor:
        """A random equivariance warp T of the images' size (``cfg.loss``: TPS, rotation, zoom,
        translation, mirror) as a sampling grid ``[B, H, W, 2]`` for :func:`~partdiscovery.data.augment.warp`."""
        b, _, h, w = images.shape
        loss = self.cfg.loss
        return random_warp_grid(
            b,
            h,
            w,
            generator,
            loss.tps_sigma,
            loss.rotation_deg,
            loss.zoom_range,
            loss.translation,
            shard=shard,
            hflip=loss.warp_hflip,
        ).to(images)

    @staticmethod
    def two_view_background_loss(
        background_logits: torch.Tensor, fg_mask: torch.Tensor, grid: torch.Tensor
    ) -> torch.Tensor:
        """:func:`~partdiscovery.losses.background_loss` averaged over the two views of one forward pass:
        ``background_logits [2B, 1, H, W]`` (x1, then T(x2)) against ``fg_mask [B, 1, H, W]`` and its
        warp by ``grid``, binarised (the warp blurs the mask's edge)."""
        bg1, bg2 = background_logits.split(fg_mask.shape[0])
        warped_mask = (warp(fg_mask, grid) > 0.5).to(fg_mask)
        return 0.5 * (background_loss(bg1, fg_mask) + background_loss(bg2, warped_mask))
