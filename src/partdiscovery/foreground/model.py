"""The foreground model of a collection: φ + a fitted co-segmentation + an edge refiner.

Example:
    >>> model = ForegroundModel.fit(images, ForegroundConfig())  # images: a list of PIL images  # doctest: +SKIP
    >>> mask = model.predict(images[0])  # bool [H, W]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground.cosegment import (
    COARSE,
    NEEDS_FIT,
    NEEDS_TEACHER,
    BorderContrast,
    CoarseApproach,
    certain_core,
)
from partdiscovery.foreground.features import border_cells, image_features
from partdiscovery.foreground.refine import REFINERS, refine_grabcut
from partdiscovery.utils.progress import progress as progress_bar


def fit_subset(count: int, limit: int) -> list[int]:
    """Indices of at most ``limit`` images spread evenly over ``count`` (deterministic, no seed needed)."""
    if count <= limit:
        return list(range(count))
    return np.linspace(0, count - 1, limit).round().astype(int).tolist()


def upsample(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    """``float32 [h, w]`` -> ``float32 [height, width]`` (bilinear, as φ's cells cover the image)."""
    t = torch.from_numpy(probability)[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


class ForegroundModel:
    """φ, the fitted coarse clustering and the refiner of ``cfg``.

    Args:
        cfg: the foreground config (approach and sizes).
        coarse: a built coarse approach (:data:`~partdiscovery.foreground.cosegment.COARSE`).
        phi: the frozen feature extractor it was fitted with.
        device: where φ runs.
    """

    def __init__(
        self,
        cfg: ForegroundConfig,
        coarse: CoarseApproach,
        phi: nn.Module,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg, self.coarse, self.phi, self.device = cfg, coarse, phi, device
        self._refine = REFINERS.get(cfg.refine)

    @classmethod
    def fit(
        cls,
        images: Sequence[Image.Image] | Sequence[Callable[[], Image.Image]],
        cfg: ForegroundConfig,
        phi: nn.Module | None = None,
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> ForegroundModel:
        """Fit the co-segmentation on ``images`` (PIL images, or callables that load one: a large
        collection is then read one image at a time). Uses at most ``cfg.fit_images`` of them."""
        fit = COARSE.get(cfg.coarse)  # fail on a bad name before the slow part
        REFINERS.get(cfg.refine)
        phi = phi if phi is not None else create_phi(cfg, device)
        if cfg.coarse not in NEEDS_FIT:
            return cls(cfg, fit(None, None, cfg, None), phi, device)
        cells, on_border, teacher = collect_fit_cells(images, cfg, phi, device, progress)
        return cls(cfg, fit(cells, on_border, cfg, teacher), phi, device)

    def coarse_probability(self, image: Image.Image, features: np.ndarray | None = None) -> np.ndarray:
        """``float32 [H, W]`` coarse foreground probability of ``image`` (``features`` if already computed)."""
        return self.coarse_maps(image, features)[0]

    def coarse_maps(
        self, image: Image.Image, features: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The refiner's inputs at the image's size: ``float32 [H, W]`` coarse probability and ``bool [H, W]``
        certain object core (None where the approach has no graded score or ``cfg.certain_fraction`` is 0)."""
        if features is None:
            features = image_features(self.phi, image, self.cfg.input_size, self.device)
        return coarse_maps(self.coarse, features, image.height, image.width, self.cfg.certain_fraction)

    def predict(self, image: Image.Image, features: np.ndarray | None = None) -> np.ndarray:
        """``bool [H, W]`` foreground mask of ``image`` (any image, not only the fitting ones)."""
        rgb = np.asarray(image.convert("RGB"))
        probability, certain = self.coarse_maps(image, features)
        return self._refine(rgb, probability, self.cfg, certain)


def coarse_maps(
    coarse: CoarseApproach, features: np.ndarray, height: int, width: int, certain_fraction: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """A coarse approach's probability and certain core (:func:`certain_core`) on φ's grid
    (``features``: ``float32 [h, w, C]``), upsampled to ``height x width``."""
    probability, score = coarse.maps(features)
    return maps_at_size(probability, score, height, width, certain_fraction)


def maps_at_size(
    probability: np.ndarray, score: np.ndarray | None, height: int, width: int, certain_fraction: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """``float32 [h, w]`` coarse probability and graded score on φ's grid -> the refiner's inputs at the image's
    size: the probability upsampled, and the certain core (``bool [height, width]``, or None)."""
    core = certain_core(probability, score, certain_fraction)
    probability = upsample(probability, height, width)
    if core is None:
        return probability, None
    return probability, upsample(core.astype(np.float32), height, width) >= 0.5


def teacher_labels(image: Image.Image, features: np.ndarray, cfg: ForegroundConfig) -> np.ndarray:
    """First-pass masks of the self-trained approach, per φ cell: ``float32 [h, w]`` object fraction of
    each cell in the ``border_contrast`` + GrabCut mask of ``image``."""
    probability, certain = coarse_maps(
        BorderContrast(), features, image.height, image.width, cfg.certain_fraction
    )
    mask = refine_grabcut(np.asarray(image.convert("RGB")), probability, cfg, certain)
    h, w = features.shape[:2]
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


def collect_fit_cells(
    images: Sequence[Image.Image] | Sequence[Callable[[], Image.Image]],
    cfg: ForegroundConfig,
    phi: nn.Module,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """φ cells drawn from at most ``cfg.fit_images`` of ``images``, for fitting ``cfg.coarse``.

    Returns:
        ``float32 [N, C]`` cells, ``bool [N]`` on the image border, and (for approaches in
        :data:`NEEDS_TEACHER`) ``float32 [N]`` object fractions from :func:`teacher_labels`, else None.
    """
    chosen = fit_subset(len(images), cfg.fit_images)
    per_image = max(1, cfg.fit_pixels // len(chosen))
    rng = np.random.default_rng(cfg.seed)
    with_teacher = cfg.coarse in NEEDS_TEACHER
    cells, on_border, teacher = [], [], []
    for i in progress_bar(chosen, "foreground: fit", enabled=progress, unit="img"):
        image = images[i] if isinstance(images[i], Image.Image) else images[i]()
        features = image_features(phi, image, cfg.input_size, device)
        h, w, c = features.shape
        index = rng.choice(h * w, size=min(per_image, h * w), replace=False)
        cells.append(features.reshape(-1, c)[index])
        on_border.append(border_cells(h, w).reshape(-1)[index])
        if with_teacher:
            teacher.append(teacher_labels(image, features, cfg).reshape(-1)[index])
    return (
        np.concatenate(cells),
        np.concatenate(on_border),
        np.concatenate(teacher) if with_teacher else None,
    )


def create_phi(
    cfg: ForegroundConfig, device: str | torch.device = "cpu", pretrained: bool = True
) -> nn.Module:
    """The frozen φ of ``cfg`` (per-layer L2-normalised), on ``device``."""
    from partdiscovery.models import create_feature_extractor

    return create_feature_extractor(cfg.feature_extractor, pretrained=pretrained).to(device)
