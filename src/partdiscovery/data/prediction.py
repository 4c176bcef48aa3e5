"""The record every source of part predictions yields (a trained model, a baseline, a folder of PNGs).

It lives with the data records (beside :class:`~partdiscovery.data.base.RawSample`), below
:mod:`partdiscovery.segmenter`, the baselines and :mod:`partdiscovery.evaluation`, so that every producer
and every scorer can name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """One predicted image at its original resolution, with its ground truth when the dataset has it.

    Attributes:
        id: the dataset's image id.
        parts: ``int64 [H, W]``, 0 = background, 1..K parts.
        probs: ``float32 [K+1, H, W]`` (channel 0 = background) or ``None``.
        fg_mask: ``bool [H, W]`` the dataset's foreground mask (or all True when none was given).
        gt_fg_mask: ``bool [H, W]`` the ground-truth foreground when ``fg_mask`` is not it
            (:attr:`~partdiscovery.data.base.RawSample.gt_fg_mask`), else ``None``.
        part_labels: ``int64 [H, W]`` ground-truth parts or ``None``.
        keypoints: ``float32 [P, 3]`` or ``None``.
        image: ``uint8 [H, W, 3]`` the photo the parts were predicted on, or ``None``: what an overlay is drawn
            on, so that it is not decoded twice (a 48-megapixel JPEG took 1.0 s to decode here, on one thread).
    """

    id: str
    parts: np.ndarray
    probs: np.ndarray | None = None
    fg_mask: np.ndarray | None = None
    gt_fg_mask: np.ndarray | None = None
    part_labels: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    image: np.ndarray | None = None
