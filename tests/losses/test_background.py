"""The learned-background cross-entropy against its formula and its sign convention."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.losses import background_loss


def test_equals_the_binary_cross_entropy_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 3, 4, generator=g, dtype=torch.float64)
    fg = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64)  # soft targets too
    p_bg, target = logits.sigmoid(), 1 - fg
    expected = -(target * p_bg.log() + (1 - target) * (1 - p_bg).log()).mean()
    torch.testing.assert_close(background_loss(logits, fg), expected)


def test_positive_logits_mean_background():
    fg = torch.zeros(1, 1, 2, 2)
    fg[..., 0, :] = 1  # top row foreground, bottom row background
    right = torch.where(fg.bool(), -20.0, 20.0)
    assert float(background_loss(right, fg)) == pytest.approx(0.0, abs=1e-8)
    assert float(background_loss(-right, fg)) == pytest.approx(20.0, rel=1e-6)
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    background_loss(logits, fg).backward()
    assert (logits.grad[fg.bool()] > 0).all() and (logits.grad[~fg.bool()] < 0).all()
