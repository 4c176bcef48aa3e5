"""Box geometry shared by the datasets that crop around an object (partdiscovery.data.boxes)."""

from __future__ import annotations

import pytest

from partdiscovery.data.boxes import pad_box, square_around


def test_pad_and_square():
    assert square_around((10, 20, 30, 30)) == (10, 15, 30, 35)
    assert pad_box((0, 0, 100, 50), 0.05) == pytest.approx((-5, -2.5, 105, 52.5))
