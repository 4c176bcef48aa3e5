"""SCOPS (Hung, Jampani, Liu, Molchanov, Yang & Kautz, "SCOPS: Self-Supervised Co-Part Segmentation",
CVPR 2019) as a method for the generic :class:`~partdiscovery.training.Trainer`.

f predicts K+1 channels, channel 0 = background. One training step (B images with masks M):

1. the clean image x1 and a photometrically jittered, randomly warped view T(x2) (as the reference:
   only the second view is jittered); one forward pass of f over both;
2. ``P = softmax`` over the K+1 channels at the loss resolution, ``R = P[:, 1:]`` the part maps;
3. losses (:mod:`partdiscovery.losses.scops`): geometric concentration of R(x1); equivariance, the
   KL of :func:`~partdiscovery.losses.equivariance_loss` between ``T(P(x1))`` (detached) and
   ``P(T(x2))`` over the pixels warped in from inside the image, plus the MSE between their part
   centres; semantic consistency, ``φ(x1) * M ≈ sum_k R_k w_k`` with a learnable non-negative part
   basis ``W [K, C]``, plus its orthonormality;
4. foreground supervision: binary cross-entropy of the background channel against ``1 - M`` on both
   views. The original SCOPS has no such term (its saliency/silhouette maps only mask φ, which
   already pushes the background channel onto them through the semantic consistency loss); it uses
   nothing beyond the masks the method is given anyway, and makes ``predict`` without masks work.

The K+1 distribution is parametrised the way :class:`~partdiscovery.segmenter.PartSegmenter` reads
it, ``P_0 = sigmoid(b)`` and ``P_k = (1 - sigmoid(b)) softmax(p)_k``, with b the background logit and
p the K part logits of :class:`~partdiscovery.models.PartOutput` (:func:`scops_log_probs`). This is a
reparametrisation of SCOPS's plain K+1 softmax (the same family of distributions), chosen so that
training and inference agree on what the background channel means.

Loss weights are ``cfg.scops`` (:class:`~partdiscovery.config.ScopsConfig`), given in the reference's
normalisations; its docstring lists the authors' released configuration (``exps/SCOPS_K8_retrain.json``
of github.com/NVlabs/SCOPS; the defaults in its ``train.py`` cannot run on their own) and why the
defaults differ from it with EfficientNet φ. They are converted to this file's normalisations and
multiplied by :data:`LOSS_SCALE` (see :func:`scops_loss_weights`).
``cfg.loss`` provides the background weight (``background``), the loss resolution
(``loss_stride``) and the warp (``tps_sigma``, ``rotation_deg``, ``zoom_range``, ``translation``);
``cfg.loss.normalize_features`` is not used: SCOPS factorises raw activations (``ref_norm: false``);
nor are the other methods' loss weights and temperature (:data:`IGNORED_LOSS_KEYS`; a value other than
the default is warned about).

Not reproduced: SCOPS's DeepLab-ResNet50 two-branch network (f is this project's
:class:`~partdiscovery.models.PartSegmentationNet`), SGD with a separately clipped basis optimiser,
and VGG19 relu5_2/relu5_4 features (φ is ``cfg.model.feature_extractor``).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from partdiscovery.config import Config, LossConfig, OptimConfig, ScopsConfig
from partdiscovery.data.augment import warp
from partdiscovery.losses import equivariance_loss
from partdiscovery.losses.scops import (
    centre_equivariance_loss,
    concentration_loss,
    nonnegative_features,
    orthonormality_loss,
    semantic_consistency_loss,
)
from partdiscovery.models import PartOutput, PartSegmentationNet
from partdiscovery.training.methods.base import (
    METHODS,
    FrozenFeaturesMethod,
    build_phi,
    downsample,
    net_param_groups,
)
from partdiscovery.utils.distributed import Shard

LOSS_NAMES = ("concentration", "equivariance", "centre_equivariance", "semantic", "orthonormality")
REFERENCE_BATCH_SIZE = 6
"""The reference concentration loss is divided by the batch size twice; at its batch size of 6."""
LOSS_SCALE = 1e-3
"""All SCOPS weights are multiplied by this (1 / the reference equivariance weight), which puts the
equivariance KL near weight 1 like this project's other losses so that ``optim.grad_clip`` and
``loss.background`` mean the same as for the other methods. Adam is invariant to a global scale."""
IGNORED_LOSS_KEYS = (
    "feature",
    "contrastive",
    "visual",
    "equivariance",
    "temperature",
    "normalize_features",
    "contrastive_layers",
    "usage",
    "usage_floor",
)
"""``cfg.loss`` entries of the other methods, which SCOPS does not use (its weights are ``cfg.scops``)."""
NONNEGATIVE_FEATURES = "split"
"""How φ is made non-negative for the part basis (:func:`~partdiscovery.losses.scops.nonnegative_features`)."""


def scops_loss_weights(num_parts: int, weights: ScopsConfig | None = None) -> dict[str, float]:
    """``weights`` (default: ``ScopsConfig()``) converted to this implementation's normalisations,
    times :data:`LOSS_SCALE`.

    - concentration: the reference averages over the batch twice -> divide by its batch size 6;
    - equivariance: ``nn.KLDivLoss()`` averages over B(K+1)HW elements, :func:`equivariance_loss` sums
      the K+1 channels -> divide by K+1;
    - centre equivariance, semantic consistency, orthonormality: same normalisation as the reference.
    """
    weights = weights or ScopsConfig()
    w = {name: getattr(weights, name) for name in LOSS_NAMES}
    w["concentration"] /= REFERENCE_BATCH_SIZE
    w["equivariance"] /= num_parts + 1
    return {k: v * LOSS_SCALE for k, v in w.items()}


def _average_over_processes(grad: torch.Tensor) -> torch.Tensor:
    """Gradient hook: the mean of ``grad`` over the processes of a distributed run (else ``grad``)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return grad
    grad = grad.clone()
    dist.all_reduce(grad)
    return grad / dist.get_world_size()


def scops_log_probs(out: PartOutput) -> torch.Tensor:
    """``[B, K+1, H, W]`` log-probabilities, channel 0 = background.

        log P_0 = log sigmoid(b),  log P_k = log sigmoid(-b) + log_softmax(p)_k   (k = 1..K)

    Its softmax is itself; ``PartSegmenter`` computes exactly these probabilities at inference.
    """
    if out.background_logits is None:
        raise ValueError("SCOPS needs a network with a learned background channel")
    bg = out.background_logits
    return torch.cat([F.logsigmoid(bg), F.logsigmoid(-bg) + out.logits.log_softmax(dim=1)], dim=1)


def warn_ignored_loss_settings(cfg: Config) -> None:
    """Warn when ``cfg.loss`` sets an entry SCOPS ignores (:data:`IGNORED_LOSS_KEYS`) to other than its
    default: the user probably meant the ``scops.*`` weight."""
    default = LossConfig()
    changed = [
        f"loss.{k}={getattr(cfg.loss, k)}"
        for k in IGNORED_LOSS_KEYS
        if getattr(cfg.loss, k) != getattr(default, k)
    ]
    if changed:
        warnings.warn(
            f"method=scops ignores {', '.join(changed)}: SCOPS's loss weights are scops.* "
            "(scops.concentration, scops.equivariance, scops.centre_equivariance, scops.semantic, "
            "scops.orthonormality); it uses loss.background, loss.loss_stride and the warp settings only",
            stacklevel=3,
        )


@METHODS.register("scops")
class SCOPS(FrozenFeaturesMethod):
    """SCOPS: concentration + equivariance + semantic consistency (see the module docstring).

    SCOPS always predicts a background channel: the network is built with
    ``model.learned_background = True`` and :attr:`cfg` says so (a copy; the given config is left as it
    is), so that the run's saved config rebuilds the same network for :meth:`PartSegmenter.load`.
    """

    def __init__(self, cfg: Config) -> None:
        warn_ignored_loss_settings(cfg)
        if not cfg.model.learned_background:
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, learned_background=True))
        super().__init__(cfg)
        self.weights = scops_loss_weights(cfg.model.num_parts, cfg.scops)
        self.net = PartSegmentationNet(cfg.model)
        self._set_phi(build_phi(cfg, normalize=False))
        channels = self.phi.channels * (2 if NONNEGATIVE_FEATURES == "split" else 1)
        # As the reference: |N(0, 1)| initialisation, made non-negative by a ReLU in use.
        self.part_basis = nn.Parameter(torch.randn(cfg.model.num_parts, channels).abs())
        # DistributedDataParallel wraps only f: average the basis gradient over processes here.
        self.part_basis.register_hook(_average_over_processes)

    @property
    def basis(self) -> torch.Tensor:
        """``[K, C]`` the non-negative part basis ``relu(part_basis)``."""
        return F.relu(self.part_basis)

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        basis = {
            "params": [self.part_basis],
            "lr": self.cfg.scops.basis_lr_factor * optim.lr,
            "name": "part_basis",
        }
        return net_param_groups(self.net, optim, basis)

    def training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None = None
    ) -> dict[str, torch.Tensor]:
        """Named losses of one step. ``shard``: this process's slice of the global batch (distributed)."""
        cfg, wt = self.cfg.loss, self.weights
        images, fg_mask = batch["image"], batch["fg_mask"]
        b, _, h, w = images.shape
        stride = cfg.loss_stride
        g = generator

        view2 = self.jitter(images, g, shard)
        grid = self.random_warp(images, g, shard)
        out = self.run_views(images, warp(view2, grid))
        log_probs = scops_log_probs(
            PartOutput(downsample(out.logits, stride), downsample(out.background_logits, stride))
        )
        log_probs1, log_probs2 = log_probs.split(b)
        probs1, probs2 = log_probs1.exp(), log_probs2.exp()

        mask = downsample(fg_mask, stride)
        raw = self.target_features(batch, (h // stride, w // stride))
        features = nonnegative_features(raw, NONNEGATIVE_FEATURES) * mask

        losses: dict[str, torch.Tensor] = {}
        losses["concentration"] = concentration_loss(probs1[:, 1:])
        inside = (warp(torch.ones_like(mask), grid) > 0.5).to(mask)
        losses["equivariance"] = equivariance_loss(log_probs2, warp(probs1.detach(), grid), inside)
        losses["centre_equivariance"] = centre_equivariance_loss(probs2[:, 1:], warp(probs1, grid)[:, 1:])
        losses["semantic"] = semantic_consistency_loss(probs1[:, 1:], features, self.basis)
        losses["orthonormality"] = orthonormality_loss(self.basis)
        total = sum(wt[name] * losses[name] for name in wt)

        losses["background"] = self.two_view_background_loss(out.background_logits, fg_mask, grid)
        losses["total"] = total + cfg.background * losses["background"]
        return losses
