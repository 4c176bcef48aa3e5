"""The equivariance loss (losses/equivariance.py): parts follow a warp and survive jitter."""

from __future__ import annotations

import math

import pytest
import torch

from partdiscovery.data.augment import random_warp_grid, warp
from partdiscovery.losses import (
    equivariance_loss,
)


def naive_kl(pred_log_probs, target, valid):
    b = target.shape[0]
    total = 0.0
    for i in range(b):
        num = 0.0
        for y in range(target.shape[2]):
            for x in range(target.shape[3]):
                t, lp = target[i, :, y, x], pred_log_probs[i, :, y, x]
                kl = sum(
                    float(t[j]) * (math.log(float(t[j])) - float(lp[j]))
                    for j in range(t.shape[0])
                    if t[j] > 0
                )
                num += float(valid[i, 0, y, x]) * kl
        total += num / max(1.0, float(valid[i].sum()))
    return total / b


def test_equivariance_zero_for_identical_distributions_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64)
    valid = torch.ones(2, 1, 5, 6, dtype=torch.float64)
    same = equivariance_loss(logits.log_softmax(1), logits.softmax(1), valid)
    assert float(same) == pytest.approx(0.0, abs=1e-12)
    other = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64).softmax(1)
    loss = equivariance_loss(logits.log_softmax(1), other, valid)
    assert float(loss) > 1e-2
    assert float(loss) == pytest.approx(naive_kl(logits.log_softmax(1), other, valid), rel=1e-9)


def test_equivariance_ignores_invalid_pixels():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 4, 4, generator=g)
    target = torch.randn(1, 3, 4, 4, generator=g).softmax(1)
    valid = torch.zeros(1, 1, 4, 4)
    valid[..., :2, :] = 1
    changed = logits.clone()
    changed[..., 2:, :] = torch.randn(1, 3, 2, 4, generator=g) * 5
    a = equivariance_loss(logits.log_softmax(1), target, valid)
    b = equivariance_loss(changed.log_softmax(1), target, valid)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    assert float(a) == pytest.approx(naive_kl(logits.log_softmax(1), target, valid), rel=1e-5)


def test_identity_warp_gives_zero_equivariance_loss():
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        2, 12, 12, g, tps_sigma=0.0, rotation_deg=0.0, zoom_range=(1.0, 1.0), translation=0.0
    )
    logits = torch.randn(2, 4, 12, 12, generator=g)
    torch.testing.assert_close(warp(logits, grid), logits, atol=1e-4, rtol=0)
    target = warp(logits.softmax(1), grid)
    loss = equivariance_loss(logits.log_softmax(1), target, torch.ones(2, 1, 12, 12))
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_equivariance_gradients_reach_logits_not_target():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).softmax(1).requires_grad_(True)
    valid = (torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64) > 0.3).double()

    assert torch.autograd.gradcheck(lambda x: equivariance_loss(x.log_softmax(1), target, valid), (logits,))
    loss = equivariance_loss(logits.log_softmax(1), target, valid)
    loss.backward()
    assert target.grad is None
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # Zero gradient where the pixel is not valid.
    assert float(logits.grad.mul(1 - valid).abs().sum()) == 0.0


def test_an_image_without_valid_pixels_costs_nothing_and_is_finite():
    """A warp can take an image's whole foreground out of view: that image contributes 0 to the batch mean (no
    0 / 0), and the other image keeps its own loss."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    target = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).softmax(1)
    valid = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    valid[1] = 0
    loss = equivariance_loss(logits.log_softmax(1), target, valid)
    alone = equivariance_loss(logits[:1].log_softmax(1), target[:1], valid[:1])
    assert torch.isfinite(loss)
    assert float(loss) == pytest.approx(float(alone) / 2, rel=1e-12)
