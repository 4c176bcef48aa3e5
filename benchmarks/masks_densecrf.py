"""A fully connected CRF (Krähenbühl & Koltun 2011) in GrabCut's place or after it, on the first round's masks.

Issue 12 names "a dense CRF or GrabCut-style refinement"; every earlier refiner measurement ("Refiners that follow
edges without colour models") tried GrabCut, superpixels and a random walker. A dense CRF keeps the coarse
probability as its unary and lets every pair of pixels of similar colour and position pull each other's labels,
with no global colour model (GrabCut's models are what give PASCAL-Person's limbs to the background). Variants, all
from the same φ features and border-contrast maps as ``partdiscovery masks``, at GrabCut's working size:

- ``none`` / ``grabcut``: the references (the coarse mask thresholded at 0.5, the default refiner);
- ``crf(coarse) cC sS``: the coarse probability (clipped to [0.02, 0.98]) as unary, a bilateral kernel of
  compatibility C and colour scale S (position scale 60 px at the working size), a Gaussian smoothness kernel (3 px,
  compatibility 3), 5 mean-field steps;
- ``crf(mix) cC sS``: the unary is the mean of the coarse probability and GrabCut's mask (a pixel both reject is
  background, one they disagree on is left to the kernels);
- ``crf(grabcut) cC sS``: GrabCut's mask as unary at confidence 0.8 (smooths its holes and ragged limbs).

Needs ``pydensecrf2`` (an sdist that builds with a C++ compiler; not a dependency of the package):

    pip install pydensecrf2
    python benchmarks/masks_densecrf.py --datasets ade_chairs ccp pascal_person --limit 70

Images: the validation subset of ``benchmarks/masks.py`` (hashed 20 % of train ids), at most ``--limit`` each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pydensecrf.densecrf as dcrf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import masks_refiners  # noqa: E402
from masks_refiners import working_size  # noqa: E402

from partdiscovery.config import ForegroundConfig  # noqa: E402
from partdiscovery.foreground.cosegment import BorderContrast  # noqa: E402
from partdiscovery.foreground.model import maps_at_size  # noqa: E402
from partdiscovery.foreground.refine import refine_grabcut  # noqa: E402

KERNELS = ((5, 13), (10, 13), (10, 25))  # (bilateral compatibility, colour scale)


def dense_crf(rgb: np.ndarray, probability: np.ndarray, compat: float, srgb: float) -> np.ndarray:
    """``bool [h, w]``: the CRF's object label from ``probability`` (``float [h, w]``, object) on ``rgb``."""
    height, width = probability.shape
    p = np.clip(probability, 0.02, 0.98).astype(np.float32)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(np.stack([1 - p, p]).reshape(2, -1))))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=60, srgb=srgb, rgbim=np.ascontiguousarray(rgb), compat=compat)
    q = np.array(crf.inference(5)).reshape(2, height, width)
    return q[1] > q[0]


def variants(rgb: np.ndarray, features: np.ndarray, cfg: ForegroundConfig) -> dict[str, np.ndarray]:
    """Every refiner's ``bool [H, W]`` mask of one image."""
    height, width = rgb.shape[:2]
    probability_grid, score_grid = BorderContrast().maps(features)
    probability, certain = maps_at_size(probability_grid, score_grid, height, width, cfg.certain_fraction)
    grabcut = refine_grabcut(rgb, probability, cfg, certain)
    masks = {"none": probability >= 0.5, "grabcut": grabcut}
    size = working_size(height, width, cfg.refine_size)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_p = cv2.resize(probability, size, interpolation=cv2.INTER_LINEAR)
    small_g = cv2.resize(grabcut.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    unaries = {
        "coarse": small_p,
        "mix": 0.5 * (small_p + small_g),
        "grabcut": 0.2 + 0.6 * small_g,
    }
    for name, unary in unaries.items():
        for compat, srgb in KERNELS:
            mask = dense_crf(small, unary, compat, srgb).astype(np.uint8)
            masks[f"crf({name}) c{compat} s{srgb}"] = cv2.resize(
                mask, (width, height), interpolation=cv2.INTER_NEAREST
            ).astype(bool)
    return masks


if __name__ == "__main__":
    masks_refiners.main(__doc__, variants, "benchmarks/out/masks_densecrf.json")
