"""The four losses against the formulas of the authors' reference code (subhc/unsup-parts: ``loss.py``,
``trainer_ours.py``), re-derived here from the equations, not copied.

Conventions of the reference that matter for the weights:
- feature loss: the per-image soft variance, *summed* over the batch (we average: the ``paper`` preset
  multiplies the weight 5 by its batch size 6);
- visual loss: the same soft variance on *raw* Lab (L in 0..100), averaged over the batch;
- contrastive: InfoNCE over part prototypes, one positive per (image, part);
- equivariance: KL(softmax(T(logits1)) || softmax(logits2)), weighted by the soft warped mask.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import rgb2lab

from partdiscovery.config import load_config
from partdiscovery.data.augment import random_warp_grid, warp
from partdiscovery.losses import (
    contrastive_loss,
    equivariance_loss,
    feature_loss,
    rgb_to_lab,
    visual_consistency_loss,
)

REFERENCE_WEIGHTS = {"feature": 5.0, "contrastive": 2.3e3, "visual": 30.0, "equivariance": 5.7e3}
REFERENCE_BATCH = 6


def reference_consistency(masks: torch.Tensor, values: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Per image: sum_k sum_c sum_u R_k (v - mean_k)^2 M / sum_u M; then the batch mean (``[B,K,H,W]``,
    ``[B,C,H,W]``, ``[B,1,H,W]``), written with the full ``[B, K, C, H, W]`` difference tensor."""
    mass = masks.sum(dim=(2, 3)).unsqueeze(-1)
    means = torch.einsum("bkhw,bchw->bkc", masks, values) / (mass + 1e-5)
    diff = (values.unsqueeze(1) - means[..., None, None]) ** 2
    per = (diff * masks.unsqueeze(2) * fg.unsqueeze(2)).sum(dim=(3, 4)) / (
        fg.unsqueeze(2).sum(dim=(3, 4)) + 1e-5
    )
    return per.sum(dim=(1, 2)).mean()


def reference_contrastive(prototypes: torch.Tensor, positives: torch.Tensor, t: float) -> torch.Tensor:
    """Cross-entropy over [positive, all other-part prototypes of the batch] for every (b, k)."""
    b, k, _ = prototypes.shape
    z = F.normalize(prototypes, dim=2)
    losses = []
    for i in range(b):
        for j in range(k):
            pos = z[i, j] @ z[positives[i, j], j]
            neg = torch.stack([z[i, j] @ z[o, p] for o in range(b) for p in range(k) if p != j])
            logits = torch.cat([pos.view(1), neg]) / t
            losses.append(-F.log_softmax(logits, dim=0)[0])
    return torch.stack(losses).mean()


def reference_equivariance(logits_warped_view, logits1, grid, mask) -> torch.Tensor:
    target = F.softmax(warp(logits1, grid), dim=1)
    kl = F.kl_div(F.log_softmax(logits_warped_view, dim=1), target, reduction="none")
    soft_mask = warp(mask, grid)
    return ((kl * soft_mask).flatten(1).sum(1) / (soft_mask.flatten(1).sum(1) + 1e-7)).mean()


def test_feature_and_visual_match_the_reference_formulas():
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(3, 4, 9, 11, generator=g, dtype=torch.float64).softmax(1)
    mask = (torch.rand(3, 1, 9, 11, generator=g) > 0.3).double()
    feats = torch.randn(3, 7, 9, 11, generator=g, dtype=torch.float64)
    assign = probs * mask
    torch.testing.assert_close(
        feature_loss(assign, feats, mask)[0], reference_consistency(assign, feats, mask), rtol=1e-6, atol=0
    )
    lab = rgb_to_lab(torch.rand(3, 3, 9, 11, generator=g)).double()
    torch.testing.assert_close(
        visual_consistency_loss(assign, lab, mask),
        reference_consistency(assign, lab, mask),
        rtol=1e-6,
        atol=0,
    )


def test_contrastive_matches_the_reference_formula():
    g = torch.Generator().manual_seed(1)
    prototypes = torch.randn(4, 3, 6, generator=g, dtype=torch.float64)
    positives = torch.tensor([[1, 2, 3], [0, 0, 2], [3, 1, 0], [2, 2, 1]])
    torch.testing.assert_close(
        contrastive_loss(prototypes, 0.19, positives=positives),
        reference_contrastive(prototypes, positives, 0.19),
        rtol=1e-12,
        atol=0,
    )


def test_equivariance_matches_the_reference_formula():
    g = torch.Generator().manual_seed(2)
    logits1 = torch.randn(2, 4, 16, 16, generator=g, dtype=torch.float64)
    logits2 = torch.randn(2, 4, 16, 16, generator=g, dtype=torch.float64)
    mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.4).double()
    grid = random_warp_grid(2, 16, 16, g).double()
    ours = equivariance_loss(logits2.log_softmax(1), warp(logits1, grid).softmax(1), warp(mask, grid))
    torch.testing.assert_close(ours, reference_equivariance(logits2, logits1, grid, mask), rtol=1e-6, atol=0)


@pytest.fixture(scope="module")
def photograph_batch(shared_data) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's batch of 6: one real photograph of the shared data and its mask, at 96 px."""
    root = shared_data / "pascal_person"
    image_id = (root / "test.txt").read_text().split()[0]
    image = Image.open(root / "images" / f"{image_id}.jpg").convert("RGB").resize((96, 96))
    mask = Image.open(root / "masks" / f"{image_id}.png").resize((96, 96), Image.NEAREST)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    m = torch.from_numpy(np.asarray(mask) > 127).float()[None]
    return x.expand(REFERENCE_BATCH, -1, -1, -1).clone(), m.expand(REFERENCE_BATCH, -1, -1, -1).clone()


def test_paper_preset_weighted_terms_equal_the_reference_on_a_photograph(photograph_batch):
    """With the ``paper`` preset's weights, each weighted term equals the reference's weighted term on
    the same network outputs: VGG19 (random weights, raw activations) φ, raw Lab, batch of 6. This is
    the test that a 1/100 Lab scale (a 1e-4 smaller visual term) would fail."""
    from partdiscovery.models import create_feature_extractor

    torch.manual_seed(0)
    cfg = load_config("paper", overrides=["model.pretrained=false"])
    images, mask = photograph_batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        phi = create_feature_extractor("vgg19", pretrained=False, normalize=cfg.loss.normalize_features)
    g = torch.Generator().manual_seed(3)
    b, k = REFERENCE_BATCH, cfg.model.num_parts
    logits1 = torch.randn(b, k, 96, 96, generator=g)
    logits2 = torch.randn(b, k, 96, 96, generator=g)
    grid = random_warp_grid(b, 96, 96, g)
    assign = logits1.softmax(1) * mask
    features = phi(images, (96, 96))
    positives = torch.randint(0, b - 1, (b, k), generator=g)
    positives = positives + (positives >= torch.arange(b)[:, None]).long()  # never the image itself

    feature, prototypes = feature_loss(assign, features, mask)
    ours = {
        "feature": cfg.loss.feature * feature,
        "contrastive": cfg.loss.contrastive * contrastive_loss(prototypes, cfg.loss.temperature, positives),
        "visual": cfg.loss.visual * visual_consistency_loss(assign, rgb_to_lab(images), mask),
        "equivariance": cfg.loss.equivariance
        * equivariance_loss(logits2.log_softmax(1), warp(logits1, grid).softmax(1), warp(mask, grid)),
    }
    lab_skimage = torch.from_numpy(np.stack([rgb2lab(im.permute(1, 2, 0).numpy()) for im in images])).permute(
        0, 3, 1, 2
    )
    reference = {
        # summed over the batch: the per-image loss times the batch size
        "feature": REFERENCE_WEIGHTS["feature"] * b * reference_consistency(assign, features, mask),
        "contrastive": REFERENCE_WEIGHTS["contrastive"]
        * reference_contrastive(prototypes.double(), positives, cfg.loss.temperature),
        "visual": REFERENCE_WEIGHTS["visual"] * reference_consistency(assign, lab_skimage.float(), mask),
        "equivariance": REFERENCE_WEIGHTS["equivariance"]
        * reference_equivariance(logits2, logits1, grid, mask),
    }
    for name in REFERENCE_WEIGHTS:
        assert float(ours[name]) == pytest.approx(float(reference[name]), rel=2e-3), name
        assert float(reference[name]) > 0, name
