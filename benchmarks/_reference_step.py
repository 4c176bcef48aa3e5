"""A deliberately straightforward "first version" of the contrastive-reconstruction training step.

This is the *before* of the before/after comparison in ``benchmarks/speed.py``: the same method and the
same losses as :meth:`ContrastiveReconstruction.training_step
<partdiscovery.training.methods.contrastive.ContrastiveReconstruction.training_step>`, written the way a
first research implementation (e.g. github.com/subhc/unsup-parts, ``trainer_ours.py`` and ``loss.py``)
computes them:

* **two separate forward passes of f**, one for x1 and one for T(x2), instead of one batched pass;
* **losses at full input resolution** (``loss_stride`` 1): φ features are upsampled to the input size;
* **φ is run twice**, once per loss branch (feature loss, contrastive prototypes). Both calls see the
  clean image, as the library's single call does, so the losses stay identical;
* **per-image Python loops** over the batch and over the parts in the feature, visual-consistency and
  contrastive losses, with the within-part variance computed directly as ``sum_u R ||v(u) - z||^2``
  (a ``[C, H, W]`` difference tensor per image and part) rather than from moments;
* no ``torch.inference_mode``, channels-last or other tricks.

What it shares with the library, on purpose: the photometric jitter, the random warp and the choice of
positive images (same functions, drawn from the same generator in the same order), f and φ themselves,
and the library's conventions where the original code differed (``EPS`` in the part means, averaging the
feature loss over the batch, the positive drawn uniformly among the other images). With f's BatchNorm in
eval mode (so that two passes equal one batched pass) it returns the same losses and gradients as the
library's step at ``loss.loss_stride=1``; ``benchmarks/speed.py`` asserts that before timing anything.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from partdiscovery.data.augment import REFERENCE_FILL, photometric_jitter, random_warp_grid, warp
from partdiscovery.losses import draw_positive_images, rgb_to_lab
from partdiscovery.losses.prototypes import EPS


def _part_mean(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``r [H, W]`` soft assignment of one part, ``v [C, H, W]`` values -> R-weighted mean ``[C]``."""
    return (r.unsqueeze(0) * v).sum(dim=(1, 2)) / (r.sum() + EPS)


def feature_loss_loop(assign: torch.Tensor, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 2 with a loop over images and parts: ``1/B sum_b sum_k sum_u R ||φ - z_k||^2 / sum_u M``."""
    b, k = assign.shape[:2]
    total = assign.new_zeros(())
    for i in range(b):
        area = mask[i].sum().clamp_min(1.0)
        loss_i = assign.new_zeros(())
        for j in range(k):
            r = assign[i, j]
            z = _part_mean(r, features[i])
            diff = features[i] - z[:, None, None]  # [C, H, W]
            loss_i = loss_i + (r * diff.pow(2).sum(dim=0)).sum()
        total = total + loss_i / area
    return total / b


def prototypes_loop(assign: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Part prototypes ``[B, K, C]``, one image and one part at a time."""
    b, k = assign.shape[:2]
    return torch.stack(
        [torch.stack([_part_mean(assign[i, j], features[i]) for j in range(k)]) for i in range(b)]
    )


def contrastive_loss_loop(
    prototypes: torch.Tensor, temperature: float, positives: torch.Tensor
) -> torch.Tensor:
    """Paper Eq. 3, one anchor ``(b, k)`` at a time: positive = part k of image ``positives[b, k]``,
    negatives = every prototype of another part index in every image (including b)."""
    b, k, _ = prototypes.shape
    z = F.normalize(prototypes, dim=-1)
    total = prototypes.new_zeros(())
    for i in range(b):
        for j in range(k):
            anchor = z[i, j]
            positive = (anchor * z[int(positives[i, j]), j]).sum() / temperature
            negatives = []
            for other_image in range(b):
                for other_part in range(k):
                    if other_part != j:
                        negatives.append((anchor * z[other_image, other_part]).sum() / temperature)
            logits = torch.stack([positive] + negatives)
            total = total - (positive - torch.logsumexp(logits, dim=0))
    return total / (b * k)


def visual_loss_loop(assign: torch.Tensor, lab: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 4 with the same loops as :func:`feature_loss_loop`, on Lab colour."""
    return feature_loss_loop(assign, lab, mask)


def equivariance_loss_plain(logits2: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 5 with ``F.kl_div``: masked per-pixel KL(target || softmax(logits2)), mean per image."""
    kl = F.kl_div(F.log_softmax(logits2, dim=1), target, reduction="none").sum(dim=1, keepdim=True)
    return ((kl * valid).sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3)).clamp_min(1.0)).mean()


def reference_training_step(method, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Named losses of one step (``feature``, ``contrastive``, ``visual``, ``equivariance``, ``total``),
    computed the straightforward way with ``method``'s f (``method.net``) and φ (``method.phi``).

    ``method.cfg.loss.loss_stride`` is ignored: every loss is at the input resolution. Only the four losses
    of the paper are computed (no learned background).
    """
    cfg = method.cfg.loss
    images, mask = batch["image"], batch["fg_mask"]
    b, _, h, w = images.shape
    g = generator

    view1 = photometric_jitter(images, method.cfg.data.jitter, g).to(images)
    view2 = photometric_jitter(images, method.cfg.data.jitter, g).to(images)
    grid = random_warp_grid(b, h, w, g, cfg.tps_sigma, cfg.rotation_deg, cfg.zoom_range, cfg.translation).to(
        images
    )

    logits1 = method.net(view1).logits  # first pass of f
    logits2 = method.net(warp(view2, grid, fill=REFERENCE_FILL)).logits  # second pass of f
    probs1 = torch.softmax(logits1, dim=1)
    assign = probs1 * mask

    features = method.phi(images, (h, w))  # φ for the feature loss, upsampled to the input size
    feature = feature_loss_loop(assign, features, mask)

    features_again = method.phi(images, (h, w))  # φ again for the contrastive branch
    prototypes = prototypes_loop(assign, features_again)
    positives = draw_positive_images(b, assign.shape[1], g)
    contrastive = contrastive_loss_loop(prototypes, cfg.temperature, positives)

    visual = visual_loss_loop(assign, rgb_to_lab(images), mask)

    target = warp(logits1.detach(), grid).softmax(dim=1)
    equivariance = equivariance_loss_plain(logits2, target, warp(mask, grid))

    total = (
        cfg.feature * feature
        + cfg.contrastive * contrastive
        + cfg.visual * visual
        + cfg.equivariance * equivariance
    )
    return {
        "feature": feature,
        "contrastive": contrastive,
        "visual": visual,
        "equivariance": equivariance,
        "total": total,
    }
