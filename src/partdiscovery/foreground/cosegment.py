"""Coarse foreground from φ features: which cells of an image are the object.

The registered approaches (``foreground.coarse``), all using only the images:

- ``cluster2`` / ``kmeans_border``: co-segmentation of the collection (below).
- ``border_contrast``: per image, a cell is object when its φ feature is unlike those of the image's
  own border cells (Otsu threshold on the dissimilarity), the border prior applied image by image.
- ``selftrain``: a linear classifier of φ cells fitted on the collection's own ``border_contrast`` +
  GrabCut masks (self-training: what the first-pass masks agree on across the collection).
- ``box``: no φ at all; everything but the image border is "probably object" (GrabCut's classic
  rectangle initialisation), the baseline the others must beat.

Co-segmentation:
No labels: the only prior is that **the background touches the image border** and the object mostly
does not (true of photo collections of one object class, crops or not: measured on the shared
datasets, 0-2% of border pixels are foreground). The φ feature cells of the whole collection are
clustered with k-means (scikit-learn); a cluster whose cells lie on the image border much less often
than cells do on average is the object. Because the clustering is fitted on the collection, not per
image, the object's clusters are the appearance that recurs across images, so a salient but
accidental background thing (a car behind one person) is not taken for the object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
from skimage.filters import threshold_otsu
from sklearn.cluster import KMeans

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground.features import border_cells
from partdiscovery.utils.registry import Registry


class CoarseApproach(Protocol):
    """What every registered coarse approach builds: φ features of one image -> object probability and,
    where it has one, a graded score (:func:`certain_core` takes the object's most certain cells from it).
    The approaches below also expose ``score(features)`` alone, for tests and scratch work."""

    fitted: bool

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` -> ``float32 [h, w]`` in [0, 1]."""
        ...

    def maps(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``float32 [h, w, C]`` -> the probability and the graded score (``float32 [h, w]``, higher: more
        object; None without one), computed once for both (the score is the costly part)."""
        ...

    def summary(self) -> dict:
        """JSON-able description (recorded beside the masks)."""
        ...


@dataclass
class CoarseForeground:
    """A fitted clustering: φ cell -> nearest centroid -> object or background.

    Attributes:
        centroids: ``float32 [k, C]``.
        foreground: ``bool [k]``, True for the object's clusters.
        border_rates: ``float [k]``, the fraction of each cluster's fitting cells on the image border.
        overall_border_rate: the fraction of all fitting cells on the border.
    """

    centroids: np.ndarray
    foreground: np.ndarray
    border_rates: np.ndarray
    overall_border_rate: float
    fitted = True

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` φ features -> ``float32 [h, w]`` in {0, 1}: 1 where the nearest centroid
        is an object cluster (hard assignment; upsampling it bilinearly gives soft edges)."""
        flat = features.reshape(-1, features.shape[-1])
        d2 = (flat**2).sum(1, keepdims=True) - 2 * flat @ self.centroids.T + (self.centroids**2).sum(1)
        return self.foreground[d2.argmin(1)].astype(np.float32).reshape(features.shape[:2])

    def score(self, features: np.ndarray) -> None:
        """No graded score: a cell is in an object cluster or not (see :func:`certain_core`)."""
        return None

    def maps(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return self.probability(features), None

    def summary(self) -> dict:
        """JSON-able description (recorded beside the masks)."""
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in asdict(self).items()
            if k != "centroids"
        } | {"clusters": int(len(self.centroids))}


COARSE: Registry[CoarseApproach] = Registry("coarse foreground approach")


def list_coarse() -> list[str]:
    return COARSE.names()


def _kmeans(cells: np.ndarray, k: int, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit(cells)


def _border_rates(labels: np.ndarray, on_border: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    on = np.bincount(labels[on_border], minlength=k).astype(np.float64)
    return on / np.maximum(counts, 1)


@COARSE.register("cluster2")
def fit_cluster2(
    cells: np.ndarray, on_border: np.ndarray, cfg: ForegroundConfig, teacher: np.ndarray | None = None
) -> CoarseForeground:
    """2-way k-means of the collection's cells; the object is the cluster less often on the border.

    Args:
        cells: ``float32 [N, C]`` φ feature cells drawn from the collection.
        on_border: ``bool [N]``, whether each cell lies on its image's border.
    """
    km = _kmeans(cells, 2, cfg.seed)
    rates = _border_rates(km.labels_, on_border, 2)
    return CoarseForeground(
        km.cluster_centers_.astype(np.float32), rates == rates.min(), rates, float(on_border.mean())
    )


@COARSE.register("kmeans_border")
def fit_kmeans_border(
    cells: np.ndarray, on_border: np.ndarray, cfg: ForegroundConfig, teacher: np.ndarray | None = None
) -> CoarseForeground:
    """``cfg.clusters``-way k-means; a cluster is the object when its border rate is below
    ``cfg.border_ratio`` times the overall one (background is split over several clusters: sky, floor,
    wall..., each frequent on the border; the object's clusters rarely reach it). At least the cluster
    least often on the border is the object, and at least one cluster stays background.

    Args:
        cells: ``float32 [N, C]``; on_border: ``bool [N]`` (as :func:`fit_cluster2`).
    """
    k = cfg.clusters
    km = _kmeans(cells, k, cfg.seed)
    rates = _border_rates(km.labels_, on_border, k)
    overall = float(on_border.mean())
    foreground = rates < cfg.border_ratio * overall
    foreground[rates.argmin()] = True
    foreground[rates.argmax()] = False
    return CoarseForeground(km.cluster_centers_.astype(np.float32), foreground, rates, overall)


def unit_rows(cells: np.ndarray) -> np.ndarray:
    """``[N, C]`` rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return cells / np.maximum(np.linalg.norm(cells, axis=1, keepdims=True), 1e-6)


def dissimilarity(cells: np.ndarray, references: np.ndarray, neighbours: int) -> np.ndarray:
    """``[N]``: 1 - the mean cosine similarity of each row of ``cells [N, C]`` to its ``neighbours`` most similar
    rows of ``references [M, C]`` (both unit rows; fewer neighbours where ``M`` is smaller)."""
    similarity = cells @ references.T
    k = min(neighbours, similarity.shape[1])
    return 1 - np.sort(similarity, axis=1)[:, -k:].mean(1)


def otsu_object(score: np.ndarray) -> np.ndarray:
    """``float32`` in {0, 1}, the shape of ``score``: 1 above its Otsu threshold; all 0 where the score is flat
    (a uniform image: no evidence of an object)."""
    if np.ptp(score) < 1e-6:
        return np.zeros(score.shape, np.float32)
    return (score > threshold_otsu(score)).astype(np.float32)


@dataclass
class BorderContrast:
    """Per-image border contrast: object = cells whose φ features are far from the image's own border.

    Attributes:
        neighbours: the dissimilarity of a cell is 1 - its mean cosine similarity to its
            ``neighbours`` most similar border cells (several, so one stray border cell that shows the
            object does not make the object look like background).
    """

    neighbours: int = 5
    fitted = False

    def score(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` -> ``float32 [h, w]`` dissimilarity to the border (higher: more object)."""
        h, w, c = features.shape
        cells = unit_rows(features.reshape(-1, c))
        references = cells[border_cells(h, w).reshape(-1)]
        return dissimilarity(cells, references, self.neighbours).reshape(h, w).astype(np.float32)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` -> ``float32 [h, w]`` in {0, 1} (Otsu threshold of :meth:`score`)."""
        return self.maps(features)[0]

    def maps(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score = self.score(features)
        return otsu_object(score), score

    def summary(self) -> dict:
        return {"neighbours": self.neighbours}


@dataclass
class Box:
    """Everything but the border is "probably object": GrabCut's rectangle initialisation."""

    fitted = False

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` -> ones ``float32 [h, w]`` (the refiner fixes the border to background)."""
        return np.ones(features.shape[:2], np.float32)

    def score(self, features: np.ndarray) -> None:
        """No graded score (nothing is certain object)."""
        return None

    def maps(self, features: np.ndarray) -> tuple[np.ndarray, None]:
        return self.probability(features), None

    def summary(self) -> dict:
        return {}


@COARSE.register("border_contrast")
def make_border_contrast(
    cells: np.ndarray | None,
    on_border: np.ndarray | None,
    cfg: ForegroundConfig,
    teacher: np.ndarray | None = None,
) -> BorderContrast:
    """Per-image approach: nothing to fit (``cells`` and ``on_border`` are ignored and may be None)."""
    return BorderContrast()


@COARSE.register("box")
def make_box(
    cells: np.ndarray | None,
    on_border: np.ndarray | None,
    cfg: ForegroundConfig,
    teacher: np.ndarray | None = None,
) -> Box:
    """No φ: nothing to fit (``cells`` and ``on_border`` are ignored and may be None)."""
    return Box()


@dataclass
class SelfTrained:
    """A linear classifier of φ cells (scikit-learn logistic regression) trained on the collection's
    own first-pass masks (``border_contrast`` + GrabCut).

    Why: each first-pass mask errs in its own way (a bright wall taken for the object, an arm cut off);
    one classifier fitted on the whole collection keeps what the masks agree on, the appearance of
    the object class, and predicts a smooth probability instead of a 0/1 cluster.
    """

    classifier: object
    fitted = True

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``float32 [h, w, C]`` -> ``float32 [h, w]`` object probability."""
        flat = features.reshape(-1, features.shape[-1])
        return self.classifier.predict_proba(flat)[:, 1].astype(np.float32).reshape(features.shape[:2])

    def score(self, features: np.ndarray) -> np.ndarray:
        """The graded score is the probability itself."""
        return self.probability(features)

    def maps(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probability = self.probability(features)
        return probability, probability

    def summary(self) -> dict:
        return {"classifier": type(self.classifier).__name__}


@COARSE.register("selftrain")
def fit_selftrain(
    cells: np.ndarray, on_border: np.ndarray, cfg: ForegroundConfig, teacher: np.ndarray | None = None
) -> SelfTrained:
    """Fit :class:`SelfTrained` on ``cells [N, C]`` with ``teacher [N]`` object fractions (>= 0.5 is
    object); cells that the first pass split nearly evenly (0.25-0.75) are left out as ambiguous."""
    from sklearn.linear_model import LogisticRegression

    if teacher is None:
        raise ValueError("selftrain needs first-pass (teacher) labels of the fitting cells")
    keep = (teacher <= 0.25) | (teacher >= 0.75)
    labels = teacher[keep] >= 0.5
    if labels.all() or not labels.any():  # one class only: fall back on the first pass's verdict
        labels[:1] = ~labels[:1]
    classifier = LogisticRegression(C=0.1, max_iter=300, class_weight="balanced", random_state=cfg.seed)
    return SelfTrained(classifier.fit(cells[keep], labels))


def certain_core(probability: np.ndarray, score: np.ndarray | None, fraction: float) -> np.ndarray | None:
    """The object's most certain cells: the top ``fraction`` by ``score`` of the cells that ``probability``
    calls object (``>= 0.5``), for the refiner to keep whatever the image's colours say.

    Why: GrabCut models object and background colours and may give whole regions of the object to the
    background where they share its colours (on PASCAL-Person's validation images its masks kept 63 % of
    the person). Fixing the object's core, the cells least like the image's border, stops it from cutting
    the object down to one garment. BENCHMARKS.md ("Foreground masks without labels") has the measured
    choice of ``fraction``.

    Args:
        probability: ``float32 [h, w]`` coarse object probability.
        score: ``float32 [h, w]`` graded object score, or None for approaches without one (nothing is certain).
        fraction: in [0, 1]; 0 gives None.

    Returns:
        ``bool [h, w]`` or None.
    """
    inside = probability >= 0.5
    if score is None or fraction <= 0 or not inside.any():
        return None
    return inside & (score >= np.quantile(score[inside], 1 - fraction))


NEEDS_FIT = {"cluster2", "kmeans_border", "selftrain"}
"""Approaches fitted on the collection's φ cells; the others work image by image."""
NEEDS_TEACHER = {"selftrain"}
"""Approaches fitted on first-pass masks of the collection (:func:`partdiscovery.foreground.model.teacher_labels`)."""
