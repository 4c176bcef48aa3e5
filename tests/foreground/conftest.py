"""Shared fixtures: a small collection of photos with an obvious object, and φ (pretrained, loaded once)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from partdiscovery.config import ForegroundConfig


def obvious_object(seed: int, size: int = 96) -> tuple[Image.Image, np.ndarray]:
    """A red ellipse (the object, away from the border) on a noisy green-grey background.

    Returns the RGB image and its ``bool [size, size]`` ground-truth mask.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.4, 0.6, 2) * size
    ry, rx = rng.uniform(0.18, 0.28, 2) * size
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    background = np.stack([60 + 0.3 * xx, 120 + 0.2 * yy, 80 + 0 * xx], -1) + rng.normal(
        0, 12, (size, size, 3)
    )
    obj = np.array([200.0, 40.0, 40.0]) + rng.normal(0, 12, (size, size, 3))
    rgb = np.where(mask[..., None], obj, background)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), mask


@pytest.fixture(scope="session")
def collection() -> list[tuple[Image.Image, np.ndarray]]:
    return [obvious_object(seed) for seed in range(6)]


@pytest.fixture(scope="session")
def phi():
    from partdiscovery.foreground import create_phi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_phi(ForegroundConfig())


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float((pred & gt).sum() / max(1, (pred | gt).sum()))


@pytest.fixture(scope="session")
def iou():
    """``iou(pred, gt)`` of two ``bool [H, W]`` masks."""
    return _iou
