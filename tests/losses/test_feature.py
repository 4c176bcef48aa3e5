"""The feature loss (losses/feature.py): pixels of one part have similar φ features."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.losses import (
    feature_loss,
)
from tests.losses.inputs import hard_constant_inputs, naive_soft_variance, soft_inputs


def test_feature_loss_zero_for_constant_parts_positive_otherwise():
    assign, values, mask = hard_constant_inputs()
    loss, prototypes = feature_loss(assign, values, mask)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(
        prototypes[0], torch.tensor([[0.1, 0.9], [0.5, -0.3], [-1.0, 0.2]]), atol=1e-5, rtol=1e-5
    )
    noisy = values + 0.1 * torch.randn(values.shape, generator=torch.Generator().manual_seed(0))
    assert float(feature_loss(assign, noisy, mask)[0]) > 1e-3


def test_feature_loss_equals_the_paper_formula():
    assign, values, mask = soft_inputs()
    loss, _ = feature_loss(assign, values, mask)
    assert float(loss) == pytest.approx(naive_soft_variance(assign, values, mask), rel=1e-5, abs=1e-7)


def test_losses_average_over_the_batch():
    assign, values, mask = soft_inputs(b=1)
    one = feature_loss(assign, values, mask)[0]
    two = feature_loss(assign.repeat(2, 1, 1, 1), values.repeat(2, 1, 1, 1), mask.repeat(2, 1, 1, 1))[0]
    assert float(two) == pytest.approx(float(one), rel=1e-9)
    a2, v2, m2 = soft_inputs(b=1, seed=5)
    pair = feature_loss(torch.cat([assign, a2]), torch.cat([values, v2]), torch.cat([mask, m2]))[0]
    assert float(pair) == pytest.approx((float(one) + float(feature_loss(a2, v2, m2)[0])) / 2, rel=1e-9)
