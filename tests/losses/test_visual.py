"""The visual-consistency loss (losses/visual.py): a piecewise-constant reconstruction in Lab."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.losses import (
    rgb_to_lab,
    visual_consistency_loss,
)
from tests.losses.inputs import hard_constant_inputs, naive_soft_variance, soft_inputs


def test_visual_loss_equals_the_paper_formula_in_lab():
    g = torch.Generator().manual_seed(1)
    assign, _, mask = soft_inputs(seed=1)
    images = torch.rand(2, 3, 6, 7, generator=g)
    lab = rgb_to_lab(images).double()
    loss = visual_consistency_loss(assign, lab, mask)
    assert float(loss) == pytest.approx(naive_soft_variance(assign, lab, mask), rel=1e-5, abs=1e-7)
    hard, _, ones = hard_constant_inputs()
    flat = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 3, 4)
    assert float(visual_consistency_loss(hard, rgb_to_lab(flat), ones)) == pytest.approx(0, abs=1e-6)


def test_lab_is_raw_like_the_reference_skimage_rgb2lab():
    """The paper's visual weight (30) is for raw Lab (L in 0..100), as skimage computes it."""
    from skimage.color import rgb2lab

    images = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(3))
    expected = torch.from_numpy(rgb2lab(images[0].permute(1, 2, 0).numpy())).permute(2, 0, 1).float()
    torch.testing.assert_close(rgb_to_lab(images)[0], expected, atol=2e-2, rtol=0)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0]), atol=0.2, rtol=0)


def test_lab_clamps_rgb_outside_the_unit_range():
    """Resampled images can overshoot [0, 1] a little (bicubic resizing): their Lab is that of the clipped colour,
    as ``skimage.color.rgb2lab`` of a valid image, not an extrapolated one (L over 100)."""
    over = torch.tensor([1.3, -0.2, 0.5]).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb_to_lab(over), rgb_to_lab(over.clamp(0, 1)))
    white = rgb_to_lab(torch.full((1, 3, 1, 1), 1.2))[0, :, 0, 0]
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0]), atol=0.2, rtol=0)
