"""Masks from a trained run: f's learned background, snapped to the image's edges.

A run trained on automatic masks (``train`` without masks turns on ``model.learned_background``) learns
a background channel from the whole collection at once. Where the first masks' errors differ from image
to image, f does not copy them: on the validation images its background alone is about as good as the
masks it learned from (IoU 74.0 vs 74.9 on CCP, 64.4 vs 61.6 on PASCAL-Person), and GrabCut seeded by it
with f's confident pixels fixed as object gains more than GrabCut seeded by φ's border contrast (80.6 vs
74.9, 68.1 vs 61.6; BENCHMARKS.md, "Masks from a trained run"). So a second round of masks comes from the
first round's model: ``partdiscovery masks --images DIR --out M --from-run RUN``.
"""

from __future__ import annotations

import numpy as np
import torch

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground.refine import REFINERS


def object_probability(segmenter, image: np.ndarray) -> np.ndarray:
    """``float32 [H, W]``: 1 - the learned background of ``segmenter``
    (:class:`~partdiscovery.segmenter.PartSegmenter`) on ``uint8 [H, W, 3]`` RGB ``image``."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    return (1.0 - segmenter.predict_proba(x)[0, 0]).numpy().astype(np.float32)


def mask_from_run(segmenter, image: np.ndarray, cfg: ForegroundConfig) -> np.ndarray:
    """``bool [H, W]``: the object where f's learned background says so, refined by ``cfg.refine`` with the
    pixels of object probability at least ``cfg.run_certain`` fixed as object.

    Why fixed pixels: GrabCut seeded by f alone cut PASCAL-Person's people down (validation IoU 64.4 -> 59.4,
    recall 76 -> 67 %), as it did from φ's coarse masks; fixing what f is sure of keeps them (68.1)."""
    probability = object_probability(segmenter, image)
    return REFINERS.get(cfg.refine)(image, probability, cfg, probability >= cfg.run_certain)
