"""Box geometry shared by the datasets that crop around an object (partdiscovery.data.boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from partdiscovery.data.boxes import jitter_padded_box, pad_box, square_around


def test_pad_and_square():
    assert square_around((10, 20, 30, 30)) == (10, 15, 30, 35)
    assert pad_box((0, 0, 100, 50), 0.05) == pytest.approx((-5, -2.5, 105, 52.5))


def test_jitter_moves_each_side_by_a_share_of_its_own_axis():
    """A tall box (10 x 100 pixels): its x sides move by at most 5 % of 10, its y sides by up to 5 % of 100. With the
    sizes swapped the square's centre would wander sideways and its side hardly change."""
    rng = np.random.default_rng(0)
    boxes = np.array([jitter_padded_box(pad_box((50, 0, 60, 100)), rng) for _ in range(200)], float)
    centre_x, side = (boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 2] - boxes[:, 0]
    assert np.abs(centre_x - 55).max() <= 0.5 + 1  # + whole-pixel rounding
    assert np.ptp(side) > 10  # the height moves by up to 2 x 5 pixels
