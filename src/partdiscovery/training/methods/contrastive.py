"""The paper's method: Choudhury et al., "Unsupervised Part Discovery from Contrastive Reconstruction",
NeurIPS 2021."""

from __future__ import annotations

import torch

from partdiscovery.config import Config, OptimConfig
from partdiscovery.data.augment import REFERENCE_FILL, warp
from partdiscovery.losses import (
    contrastive_loss,
    equivariance_loss,
    feature_loss,
    rgb_to_lab,
    usage_loss,
    visual_consistency_loss,
)
from partdiscovery.losses.prototypes import part_means
from partdiscovery.models import PartSegmentationNet
from partdiscovery.models.features import check_layer_weights
from partdiscovery.training.methods.base import (
    METHODS,
    FrozenFeaturesMethod,
    build_phi,
    downsample,
    erode,
    net_param_groups,
)
from partdiscovery.utils.distributed import Shard, all_gather_with_grad


@METHODS.register("contrastive_reconstruction")
class ContrastiveReconstruction(FrozenFeaturesMethod):
    """Choudhury et al. 2021: feature + contrastive + visual consistency + equivariance losses.

    One training step (B images with masks M):

    1. two photometrically jittered views x1, x2 of each image, and a random warp T;
    2. part logits of x1 and of T(x2) from f; φ features of the clean image (no grad);
    3. ``R = softmax(f(x1)) * M`` at the loss resolution (M eroded by ``loss.mask_erosion``), the four
       losses, their weighted sum (``cfg.loss``), plus the background loss with ``model.learned_background``
       (against the whole M) and the part-usage hinge with ``loss.usage`` (not in the paper).

    With ``loss.contrastive_layers`` the contrastive prototypes are part means of another weighting of
    φ's layers instead of the feature loss's prototypes: φ is built with the layers of both and each term
    picks its channels from the one output (cached or not, at ``loss.feature_input_scale``).
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.net = PartSegmentationNet(cfg.model).to(memory_format=torch.channels_last)
        phi = build_phi(cfg, normalize=cfg.loss.normalize_features)
        # The terms whose features are a re-weighting of φ's output (``loss.contrastive_layers``): one φ
        # computes the layers of both terms and each picks and re-weights its channels. The feature
        # term needs it only when φ gained layers for the contrastive term.
        self.reweighted_terms: tuple[str, ...] = ()
        if cfg.loss.contrastive_layers is not None:
            check_layer_weights(
                cfg.model.feature_extractor, cfg.loss.contrastive_layers, "loss.contrastive_layers"
            )
            own = phi.selectable_weights()
            union = tuple(f if f > 0 else c for f, c in zip(own, cfg.loss.contrastive_layers))
            terms = {"contrastive": tuple(cfg.loss.contrastive_layers)}
            if union != own:
                phi = build_phi(cfg, normalize=cfg.loss.normalize_features, layers=union)
                terms["feature"] = own
            for term, layers in terms.items():
                index, factor = phi.reweighting(layers)
                self.register_buffer(f"_{term}_channels", index, persistent=False)
                self.register_buffer(f"_{term}_factors", factor, persistent=False)
            self.reweighted_terms = tuple(terms)
        self._set_phi(phi)

    def _term_features(self, features: torch.Tensor, term: str) -> torch.Tensor:
        """φ's output ``[B, C, h, w]`` as the ``term``'s layers weight it (``loss.contrastive_layers``)."""
        index, factor = getattr(self, f"_{term}_channels"), getattr(self, f"_{term}_factors")
        return features.index_select(1, index) * factor.to(features.dtype).view(1, -1, 1, 1)

    def param_groups(self, optim: OptimConfig) -> list[dict]:
        return net_param_groups(self.net, optim)

    def training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None = None
    ) -> dict[str, torch.Tensor]:
        """Named losses of one step. ``shard``: this process's slice of the global batch (distributed)."""
        cfg = self.cfg.loss
        images, fg_mask = batch["image"], batch["fg_mask"]
        b, _, h, w = images.shape
        stride = cfg.loss_stride
        g = generator

        view1 = self.jitter(images, g, shard)
        view2 = self.jitter(images, g, shard)
        grid = self.random_warp(images, g, shard)
        # The warped view is padded with the mean colour, as the reference's zero padding of
        # mean-subtracted images. One forward pass of f over both views by default (one BatchNorm batch);
        # ``loss.separate_view_passes``: two, as the reference.
        out = self.run_views(view1, warp(view2, grid, fill=REFERENCE_FILL))
        logits1, logits2 = downsample(out.logits, stride).split(b)

        # ``loss.mask_erosion``: the parts learn from the mask's sure inside; the background loss sees it whole.
        mask = downsample(erode(fg_mask, cfg.mask_erosion), stride)
        features = self.target_features(batch, (h // stride, w // stride))
        if "contrastive" in self.reweighted_terms:
            semantic = self._term_features(features, "contrastive")
        if "feature" in self.reweighted_terms:
            features = self._term_features(features, "feature")
        probs1 = logits1.softmax(dim=1)
        assign = probs1 * mask

        losses: dict[str, torch.Tensor] = {}
        losses["feature"], prototypes = feature_loss(assign, features, mask)
        if "contrastive" in self.reweighted_terms:
            prototypes, _ = part_means(assign, semantic)
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
        if cfg.usage > 0:  # shares of the global batch's foreground (summed across processes under DDP)
            mass, area = assign.sum(dim=(0, 2, 3)), mask.sum()
            if shard is not None and not shard.is_whole:
                mass = all_gather_with_grad(mass.unsqueeze(0)).sum(0)
                area = all_gather_with_grad(area.view(1)).sum()
            losses["usage"] = usage_loss(mass, area, cfg.usage_floor)
            total = total + cfg.usage * losses["usage"]
        if out.background_logits is not None:
            losses["background"] = self.two_view_background_loss(out.background_logits, fg_mask, grid)
            total = total + cfg.background * losses["background"]
        losses["total"] = total
        return losses
