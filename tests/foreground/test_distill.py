"""foreground/distill.py: masks from a trained run's learned background."""

from __future__ import annotations

import numpy as np
import torch

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground.distill import mask_from_run, object_probability


class _StubRun:
    """A segmenter whose learned background is a given map (channel 0 of ``predict_proba``)."""

    def __init__(self, background: np.ndarray) -> None:
        self.background = torch.from_numpy(background)

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        assert images.shape[-2:] == self.background.shape and 0 <= images.min() <= images.max() <= 1
        return torch.stack([self.background, 1 - self.background])[None]


def _red_photo_with_a_half_red_object(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb = np.zeros((80, 80, 3)) + [200, 40, 40]
    obj, blue = np.zeros((80, 80), bool), np.zeros((80, 80), bool)
    obj[20:60, 20:60], blue[20:60, 20:40] = True, True
    rgb[blue] = [40, 40, 200]
    return np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8), obj, blue


def test_object_probability_is_one_minus_the_learned_background():
    background = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    image = np.zeros((3, 4, 3), np.uint8)
    assert np.allclose(object_probability(_StubRun(background), image), 1 - background)


def test_the_runs_confident_object_is_kept_where_it_shares_the_background_colour():
    """The object is half blue, half the background's red; the run is sure of the whole object (0.9) and
    unsure of a rim around it (0.6). GrabCut alone would give the red half away; fixed above
    ``run_certain`` it stays object, and the unsure red rim goes to the background."""
    rgb, obj, blue = _red_photo_with_a_half_red_object(np.random.default_rng(0))
    probability = np.zeros((80, 80), np.float32)
    probability[16:64, 16:64] = 0.6
    probability[obj] = 0.9
    run = _StubRun(1 - probability)
    mask = mask_from_run(run, rgb, ForegroundConfig(run_certain=0.75, refine_size=40))
    assert mask[obj].all() and not mask[~obj].any()
    loose = mask_from_run(run, rgb, ForegroundConfig(run_certain=0.95, refine_size=40))
    assert loose[blue].all() and not loose[obj & ~blue].all()  # nothing fixed: GrabCut cuts the red half
    thresholded = mask_from_run(run, rgb, ForegroundConfig(refine="none"))
    assert (thresholded == (probability >= 0.5)).all()
