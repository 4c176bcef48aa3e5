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
    image, gt = collection[1]
    big = np.asarray(image.resize((400, 400)))
    gt_big = np.asarray(Image.fromarray(gt).resize((400, 400))).astype(bool)
    refined = REFINERS.build("grabcut", big, gt_big.astype(np.float32), ForegroundConfig(refine_size=96))
    assert refined.shape == (400, 400) and iou(refined, gt_big) > 0.85


def test_grabcut_without_an_object_seed_returns_the_coarse_mask():
    rgb = np.zeros((20, 20, 3), np.uint8)
    assert not REFINERS.build("grabcut", rgb, np.zeros((20, 20), np.float32), ForegroundConfig()).any()
