"""Snap a coarse foreground (φ's stride-8 grid, upsampled) to the edges of the image.

GrabCut (OpenCV, Rother et al. 2004) fits colour models of object and background from the coarse
mask and cuts along image edges; the coarse mask seeds it ("probably object" / "probably
background"), the object's certain core (:func:`~partdiscovery.foreground.cosegment.certain_core`) is
fixed to object, and the outermost pixels are fixed to background, the border prior once more.

A refiner is ``refine(image, probability, cfg, certain=None) -> bool [H, W]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from partdiscovery.config import ForegroundConfig
from partdiscovery.utils.registry import Registry

REFINERS: Registry[np.ndarray] = Registry("foreground refiner")


def list_refiners() -> list[str]:
    return REFINERS.names()


@REFINERS.register("none")
def refine_none(
    image: np.ndarray, probability: np.ndarray, cfg: ForegroundConfig, certain: np.ndarray | None = None
) -> np.ndarray:
    """Threshold the coarse probability at 0.5.

    Args:
        image: ``uint8 [H, W, 3]`` RGB (unused).
        probability: ``float32 [H, W]`` coarse foreground probability at the image's size.
        certain: unused (the certain core lies inside the thresholded mask).

    Returns:
        ``bool [H, W]``.
    """
    return probability >= 0.5


@REFINERS.register("grabcut")
def refine_grabcut(
    image: np.ndarray, probability: np.ndarray, cfg: ForegroundConfig, certain: np.ndarray | None = None
) -> np.ndarray:
    """GrabCut seeded by the coarse mask, at most ``cfg.refine_size`` px on the longer side.

    Args:
        image: ``uint8 [H, W, 3]`` RGB.
        probability: ``float32 [H, W]`` coarse foreground probability.
        certain: ``bool [H, W]`` pixels fixed to object (GrabCut cannot remove them), or None.

    Returns:
        ``bool [H, W]``; the thresholded coarse mask where GrabCut cannot run (no object seed, or an
        image under 3 px) or removes every object pixel.
    """
    coarse = probability >= 0.5
    if not coarse.any() or min(coarse.shape) < 3:
        return coarse
    height, width = coarse.shape
    scale = min(1.0, cfg.refine_size / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    prob = cv2.resize(probability, size, interpolation=cv2.INTER_LINEAR) if scale < 1 else probability
    seeds = np.where(prob >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if certain is not None:
        fixed = (
            cv2.resize(certain.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            if scale < 1
            else certain
        )
        seeds[fixed.astype(bool)] = cv2.GC_FGD
    seeds[[0, -1], :] = cv2.GC_BGD
    seeds[:, [0, -1]] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(cfg.seed)
    try:
        cv2.grabCut(
            cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR),
            seeds,
            None,
            bgd,
            fgd,
            cfg.grabcut_iterations,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:  # degenerate colour statistics (e.g. a flat image): keep the coarse mask
        return coarse
    mask = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    if not mask.any():  # GrabCut gave the whole object to the background: trust φ instead
        return coarse
    if scale < 1:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return mask.astype(bool)
