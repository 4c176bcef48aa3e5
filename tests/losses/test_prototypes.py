"""Soft part means and variances (losses/prototypes.py): the statistics every loss builds on."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.losses import (
    part_means,
    soft_part_variance,
)
from tests.losses.inputs import soft_inputs


def test_part_means_are_weighted_means():
    assign, values, _ = soft_inputs()
    means, mass = part_means(assign, values)
    assert means.shape == (2, 3, 5) and mass.shape == (2, 3)
    expected = (assign[:, :, None] * values[:, None]).sum(dim=(3, 4)) / assign.sum(dim=(2, 3))[..., None]
    torch.testing.assert_close(means, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(mass, assign.sum(dim=(2, 3)))


# --------------------------------------------------------------------------------- feature and visual
def test_soft_variance_is_normalised_by_foreground_area():
    assign, values, mask = soft_inputs(b=1)
    padded = [torch.nn.functional.pad(t, (0, 7)) for t in (assign, values, mask)]  # zeros: no new fg
    assert float(soft_part_variance(*padded)[0]) == pytest.approx(
        float(soft_part_variance(assign, values, mask)[0])
    )


# -------------------------------------------------------------------------------------- contrastive


def test_an_image_without_foreground_contributes_zero_not_nan():
    """A mask can be empty (a small object after ``loss.mask_erosion``): the image's variance is 0, not 0 / 0, and
    the batch mean halves the other image's."""
    assign, values, mask = soft_inputs(b=2)
    assign, mask = assign.clone(), mask.clone()
    assign[1], mask[1] = 0, 0
    loss = soft_part_variance(assign, values, mask)[0]
    alone = soft_part_variance(assign[:1], values[:1], mask[:1])[0]
    assert torch.isfinite(loss)
    assert float(loss) == pytest.approx(float(alone) / 2, rel=1e-12)
