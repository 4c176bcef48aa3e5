"""Refiners: GrabCut snaps a blocky coarse mask to the object's edge."""

from __future__ import annotations

import numpy as np
from PIL import Image

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground import REFINERS


def test_grabcut_snaps_a_coarse_blob_to_the_edge(collection, iou):
    image, gt = collection[0]
    blob = np.zeros(gt.shape, np.float32)
    ys, xs = np.nonzero(gt)
    blob[max(0, ys.min() - 8) : ys.max() + 8, max(0, xs.min() - 8) : xs.max() + 8] = 1.0  # a loose box
    rgb = np.asarray(image)
    coarse = REFINERS.build("none", rgb, blob, ForegroundConfig())
    refined = REFINERS.build("grabcut", rgb, blob, ForegroundConfig())
    assert refined.shape == gt.shape and refined.dtype == bool
    assert iou(refined, gt) > 0.85 > iou(coarse, gt)


def test_grabcut_downscales_large_images_and_keeps_the_size(collection, iou):
    """Not square (400 wide, 240 high), so that swapping height and width on the way down or up shows."""
    image, gt = collection[1]
    big = np.asarray(image.resize((400, 240)))
    gt_big = np.asarray(Image.fromarray(gt).resize((400, 240))).astype(bool)
    refined = REFINERS.build("grabcut", big, gt_big.astype(np.float32), ForegroundConfig(refine_size=96))
    assert refined.shape == (240, 400) and iou(refined, gt_big) > 0.85


def test_grabcut_without_an_object_seed_returns_the_coarse_mask():
    rgb = np.zeros((20, 20, 3), np.uint8)
    assert not REFINERS.build("grabcut", rgb, np.zeros((20, 20), np.float32), ForegroundConfig()).any()


def test_grabcut_keeps_the_certain_core_where_it_shares_the_background_colour():
    """An object half blue, half the background's red: GrabCut alone gives the red half to the
    background; with the red half's core certain, that core stays object."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((80, 80, 3)) + [200, 40, 40]
    obj, blue = np.zeros((80, 80), bool), np.zeros((80, 80), bool)
    obj[20:60, 20:60], blue[20:60, 20:40] = True, True
    rgb[blue] = [40, 40, 200]
    rgb = np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)
    probability = np.zeros((80, 80), np.float32)
    probability[16:64, 16:64] = 1.0
    certain = np.zeros((80, 80), bool)
    certain[30:50, 44:56] = True
    alone = REFINERS.build("grabcut", rgb, probability, ForegroundConfig())
    fixed = REFINERS.build("grabcut", rgb, probability, ForegroundConfig(refine_size=40), certain)
    assert alone[blue].all() and not alone[obj & ~blue].any()
    assert fixed[certain].all() and fixed[blue].all() and not fixed[~obj].any()
    assert REFINERS.build("none", rgb, probability, ForegroundConfig(), certain).sum() == probability.sum()
