"""The paper's method: Choudhury et al., "Unsupervised Part Discovery from Contrastive Reconstruction",
NeurIPS 2021."""

from __future__ import annotations

import copy

import torch

from partdiscovery.config import Config, OptimConfig
from partdiscovery.data.augment import REFERENCE_FILL, warp
from partdiscovery.data.feature_cache import PartLabelCache
from partdiscovery.data.transforms import crop_resize, letterbox_box, uncrop
from partdiscovery.losses import (
    background_loss,
    contrastive_loss,
    equivariance_loss,
    feature_loss,
    rgb_to_lab,
    self_training_loss,
    usage_loss,
    visual_consistency_loss,
)
from partdiscovery.losses.prototypes import part_means
from partdiscovery.models import PartSegmentationNet
from partdiscovery.models.features import check_layer_weights
from partdiscovery.models.part_net import part_probabilities
from partdiscovery.models.refine import refine_probs
from partdiscovery.training.methods.base import (
    METHODS,
    FrozenFeaturesMethod,
    build_phi,
    downsample,
    erode,
    net_param_groups,
)
from partdiscovery.training.phases import method_steps, phase_start_of, phase_starts
from partdiscovery.utils.distributed import Shard, all_gather_with_grad, broadcast_tensors


def _drop_unset_teacher(method: torch.nn.Module, state: dict, prefix: str, metadata) -> None:
    """``state_dict`` hook: no ``teacher.*`` entries while ``teacher_step`` is -1 (not yet copied)."""
    if int(state[prefix + "teacher_step"]) < 0:
        for key in [k for k in state if k.startswith(prefix + "teacher.")]:
            del state[key]


def _keep_unset_teacher(method: torch.nn.Module, state: dict, prefix: str, *args) -> None:
    """``load_state_dict`` hook: a state without the teacher (not yet copied) keeps the module's own."""
    step = state.get(prefix + "teacher_step")
    if step is not None and int(step) < 0 and not any(k.startswith(prefix + "teacher.") for k in state):
        state.update({prefix + "teacher." + k: v for k, v in method.teacher.state_dict().items()})


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

    With ``train.self_train_steps`` (not in the paper) the last steps self-train f instead: at the first of them
    the trainer asks for the batches' targets (:meth:`feature_cache`), f is copied into a frozen teacher (kept in
    the checkpoints from then on, so that a resumed run has the same one), and each step is a cross-entropy of f on
    one jittered view to the teacher's refined parts of the crop (:mod:`partdiscovery.losses.self_training`), plus
    the background loss with ``model.learned_background``. The four terms are not computed there and log as 0.
    With ``train.self_train_rounds`` > 1 the copy and the targets are made again at each round's first step.
    """

    self_trains = True
    """Supports ``train.self_train_steps`` (:func:`~partdiscovery.training.checks.check_config` asks)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.net = PartSegmentationNet(cfg.model).to(memory_format=torch.channels_last)
        self.self_training_from = method_steps(cfg) if len(phase_starts(cfg)) > 1 else None
        if self.self_training_from is not None:
            # Its weights are f's at the first step of the latest self-training round; -1 until the first.
            self.teacher = copy.deepcopy(self.net).requires_grad_(False).eval()
            self.register_buffer("teacher_step", torch.tensor(-1))
            # Checkpoints hold the teacher only once it is f's copy: before, it would double their size (the
            # restarts' candidates never reach the copy) for weights that are overwritten at the copy.
            self.register_state_dict_post_hook(_drop_unset_teacher)
            self.register_load_state_dict_pre_hook(_keep_unset_teacher)
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

    def train(self, mode: bool = True) -> ContrastiveReconstruction:
        super().train(mode)
        if self.self_training_from is not None:
            self.teacher.eval()  # its BatchNorm statistics are f's at the copy
        return self

    def feature_cache(self, device: torch.device | str = "cpu", step: int = 0):
        """From the first self-training step on: the teacher's parts of each training image (a
        :class:`~partdiscovery.data.feature_cache.PartLabelCache`; the teacher is f, copied at the first step of
        each round, ``train.self_train_rounds``, unless a resumed run restored it). Before: φ's cache, as
        :class:`FrozenFeaturesMethod`."""
        if self.self_training_from is None or step < self.self_training_from:
            return super().feature_cache(device, step)
        # At a round's first step; not within a round (a resumed run restored the round's teacher).
        if int(self.teacher_step) < phase_start_of(self.cfg, step):
            self.teacher.load_state_dict(self.net.state_dict())
            # One teacher for every process (a checkpoint keeps the main one's): without SyncBatchNorm each process
            # updated its own BatchNorm statistics.
            broadcast_tensors(self.teacher.state_dict().values())
            self.teacher_step.fill_(step)
        return PartLabelCache(self.teacher_parts, self.cfg.data.input_size)

    @torch.no_grad()
    def teacher_parts(self, images: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
        """The teacher's parts of whole images as ``predict`` draws them: f on the letterboxed image at the input
        size, its maps back at the image's size, cut by the mask and refined by ``predict.refine``.

        Args:
            images: ``[B, 3, H, W]`` in [0, 1]; fg_mask: ``[B, 1, H, W]`` in {0, 1}.

        Returns:
            ``[B, H, W]`` int64 part index (0..K-1) per pixel, on the CPU.
        """
        device = self.teacher_step.device
        images, fg_mask = images.to(device), fg_mask.to(device)
        h, w = images.shape[-2:]
        box = letterbox_box(w, h)
        logits = uncrop(
            self.teacher(crop_resize(images, box, self.cfg.data.input_size)).logits.float(), box, h, w
        )
        probs = part_probabilities(logits, fg_mask=fg_mask)
        return refine_probs(images, probs, self.cfg.predict)[:, 1:].argmax(dim=1).cpu()

    def training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None = None
    ) -> dict[str, torch.Tensor]:
        """Named losses of one step. ``shard``: this process's slice of the global batch (distributed)."""
        if PartLabelCache.batch_key in batch:
            return self._self_training_step(batch, generator, shard)
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
        if self.self_training_from is not None:  # one set of names for the whole log
            losses["self_training"] = torch.zeros((), device=total.device)
        losses["total"] = total
        return losses

    def _self_training_step(
        self, batch: dict, generator: torch.Generator, shard: Shard | None
    ) -> dict[str, torch.Tensor]:
        """The losses of a self-training step: f on one jittered view against the teacher's parts of the crop."""
        images, fg_mask = batch["image"], batch["fg_mask"]
        out = self.run_net(self.jitter(images, generator, shard))
        zero = torch.zeros((), device=images.device)
        # The names in the method's order (the log's columns): the four terms, usage, background, self_training.
        losses = {name: zero for name in ("feature", "contrastive", "visual", "equivariance")}
        if self.cfg.loss.usage > 0:
            losses["usage"] = zero
        if out.background_logits is not None:
            losses["background"] = background_loss(out.background_logits, fg_mask)
        losses["self_training"] = self_training_loss(out.logits, batch[PartLabelCache.batch_key], fg_mask)
        total = losses["self_training"]
        if "background" in losses:
            total = total + self.cfg.loss.background * losses["background"]
        losses["total"] = total
        return losses
