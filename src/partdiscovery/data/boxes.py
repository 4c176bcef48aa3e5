"""Box geometry shared by the datasets that crop around an annotated object (CUB, PASCAL-Part).

Convention: a box is ``(x0, y0, x1, y1)`` in pixels of the image it belongs to, x1/y1 exclusive (the
convention of :mod:`partdiscovery.data.transforms`). The padding and the jitter follow CMR (Kanazawa et
al. 2018), whose crops the reference implementation of the paper reuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD_FRACTION = 0.05
"""Crops pad the annotated box by this fraction of its size on every side (CMR, reference)."""
JITTER_FRACTION = 0.05
"""Training crops move every side of the padded box by up to this fraction of the box size (CMR)."""


def pad_box(box: Sequence[float], fraction: float = PAD_FRACTION) -> tuple[float, float, float, float]:
    """``box`` grown by ``fraction`` of its width (x) and height (y) on every side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = fraction * (x1 - x0), fraction * (y1 - y0)
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def square_around(box: Sequence[float]) -> tuple[int, int, int, int]:
    """The square box (integer pixels, x1/y1 exclusive) with the same centre as ``box`` and side max(w, h)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0)
    half = side / 2.0
    sx0, sy0 = int(round((x0 + x1) / 2.0 - half)), int(round((y0 + y1) / 2.0 - half))
    s = max(1, int(round(side)))
    return (sx0, sy0, sx0 + s, sy0 + s)


def jitter_padded_box(
    padded: Sequence[float],
    rng: np.random.Generator,
    pad: float = PAD_FRACTION,
    jitter: float = JITTER_FRACTION,
) -> tuple[int, int, int, int]:
    """The reference's training crop from an already padded box: every side moves by
    ``U(-jitter, jitter)`` x the *tight* box size, then the box is made square (CMR ``peturb_bbox`` +
    ``square_bbox``)."""
    x0, y0, x1, y1 = (float(v) for v in padded)
    w, h = (x1 - x0) / (1 + 2 * pad), (y1 - y0) / (1 + 2 * pad)
    d = rng.uniform(-jitter, jitter, size=4)
    return square_around((x0 - d[0] * w, y0 - d[1] * h, x1 + d[2] * w, y1 + d[3] * h))
