"""Streaming clustering metrics (NMI, ARI) for part-segmentation evaluation.

Why streaming
-------------
NMI and ARI depend on the two labelings only through their *contingency table*
``table[i, j] = #pixels with predicted cluster i and ground-truth class j``. A test split such as
DeepFashion has ~450 million pixels; concatenating every pixel label of the split (as a direct call to
``sklearn.metrics.normalized_mutual_info_score(all_gt, all_pred)`` would need) costs gigabytes, while
the table is a few hundred bytes. :class:`ContingencyTable` is therefore updated image by image with one
vectorised ``bincount`` each and the scores are computed from the table at the end. Tables from several
processes can be combined with :meth:`ContingencyTable.merge`.

Conventions
-----------
* Both scores equal scikit-learn's: :meth:`ContingencyTable.nmi` is
  ``normalized_mutual_info_score(target, pred)`` (``average_method="arithmetic"``, natural log) and
  :meth:`ContingencyTable.ari` is ``adjusted_rand_score(target, pred)``, including sklearn's special
  cases (see :func:`nmi_from_contingency` and :func:`ari_from_contingency`). Label ids are arbitrary
  non-negative integers; ids that never occur (empty rows / columns of the table) do not change the
  result. Both scores are symmetric, so the orientation of the table does not matter.
* ``ContingencyTable`` methods return fractions (NMI in [0, 1], ARI in [-1, 1]);
  :meth:`PartMetrics.summary` reports **percentages** (x100), as in the paper's tables.
* :class:`PartMetrics` keeps two tables:

  - ``fg`` ("FG-NMI" / "FG-ARI"): only foreground pixels (by default ``gt_parts > 0``), predicted part
    vs ground-truth part. This measures how well the parts are split, independently of the foreground
    mask quality.
  - ``full`` ("NMI" / "ARI"): every pixel, where background (label 0) is a cluster of its own in both
    the prediction and the ground truth, so foreground/background errors are penalised too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import log
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

__all__ = [
    "ContingencyTable",
    "PartMetrics",
    "ari_from_contingency",
    "nmi_from_contingency",
]

# A dense table larger than this (int64 cells, 512 MiB) almost surely means label ids are not small
# consecutive-ish integers (e.g. instance ids or colours were passed instead of part indices).
_MAX_CELLS = 1 << 26

_EMPTY_MESSAGE = "no pixels were counted"


# --------------------------------------------------------------------------------------------------
# Scores from a contingency table
# --------------------------------------------------------------------------------------------------


def _checked_table(table: Any) -> np.ndarray:
    """Validate ``table`` (2-D, non-negative integers) and drop all-zero rows and columns.

    Returns an int64 array ``[n_pred_present, n_target_present]``; raises ``ValueError`` if it sums to 0.
    """
    if isinstance(table, torch.Tensor):
        table = table.detach().cpu().numpy()
    t = np.asarray(table)
    if t.ndim != 2:
        raise ValueError(f"contingency table must be 2-D, got shape {t.shape}")
    if t.size and not (np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_):
        is_float = np.issubdtype(t.dtype, np.floating)
        if not (is_float and bool(np.all(np.isfinite(t) & (t == np.round(t))))):
            raise ValueError(f"contingency table must hold integer counts, got dtype {t.dtype}")
    t = t.astype(np.int64, copy=False)
    if t.size and t.min() < 0:
        raise ValueError("contingency table has negative counts")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.size == 0:
        raise ValueError(_EMPTY_MESSAGE)
    return t


def _entropy_from_counts(counts: np.ndarray) -> float:
    """Natural-log entropy of a labeling given its (strictly positive) cluster sizes, as sklearn's."""
    if counts.size == 1:
        return 0.0
    pi = counts.astype(np.float64)
    pi_sum = float(pi.sum())
    return float(-np.sum((pi / pi_sum) * (np.log(pi) - log(pi_sum))))


def nmi_from_contingency(table: np.ndarray) -> float:
    """Normalized mutual information (arithmetic mean normalisation) from a contingency table.

    Args:
        table: int ``[n_pred, n_target]`` (either orientation; NMI is symmetric) of co-occurrence counts.

    Returns:
        NMI as a fraction in [0, 1], equal (to rounding) to
        ``sklearn.metrics.normalized_mutual_info_score(target, pred)``. Follows sklearn's conventions:
        1.0 when both labelings consist of a single cluster; 0.0 when the mutual information is 0
        (including when exactly one labeling is a single cluster). The value is clipped to [0, 1]
        (sklearn may return ``1 + 1ulp``).

    Raises:
        ValueError: the table is empty / sums to zero ("no pixels were counted").
    """
    t = _checked_table(table)
    n_rows, n_cols = t.shape
    if n_rows == n_cols == 1:
        return 1.0
    if n_rows == 1 or n_cols == 1:
        return 0.0

    pi = t.sum(axis=1)
    pj = t.sum(axis=0)
    nzx, nzy = np.nonzero(t)
    nz_val = t[nzx, nzy].astype(np.float64)
    n = float(t.sum())
    # Same expression as sklearn.metrics.mutual_info_score; the marginal product is taken in float64
    # (exact below 2**53, otherwise correctly rounded) instead of int64 so huge counts cannot overflow.
    outer = pi.astype(np.float64).take(nzx) * pj.astype(np.float64).take(nzy)
    log_outer = -np.log(outer) + log(n) + log(n)
    contingency_nm = nz_val / n
    mi_terms = contingency_nm * (np.log(nz_val) - log(n)) + contingency_nm * log_outer
    mi_terms = np.where(np.abs(mi_terms) < np.finfo(np.float64).eps, 0.0, mi_terms)
    mi = float(np.clip(mi_terms.sum(), 0.0, None))
    if mi == 0.0:
        return 0.0
    h_pred = _entropy_from_counts(pi)
    h_true = _entropy_from_counts(pj)
    normalizer = (h_true + h_pred) / 2.0
    return float(min(max(mi / normalizer, 0.0), 1.0))


def _sum_of_squares(values: np.ndarray, bound: int) -> int:
    """Exact ``sum(v**2)`` as a Python int; ``bound`` is an upper bound of the result."""
    if bound < (1 << 62):  # int64 cannot overflow: every partial sum is <= bound
        return int(np.sum(values.astype(np.int64) ** 2))
    return sum(v * v for v in values.tolist())


def ari_from_contingency(table: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table.

    Args:
        table: int ``[n_pred, n_target]`` (either orientation; ARI is symmetric) of co-occurrence counts.

    Returns:
        ARI in [-1, 1], equal (to rounding) to ``sklearn.metrics.adjusted_rand_score(target, pred)``.
        Uses sklearn's pair-confusion formulation and special case: 1.0 when no pair of samples is
        split differently by the two labelings (a single sample, identical partitions, both
        all-in-one or both all-singletons); e.g. all-in-one vs all-singletons gives 0.0.

    Pair counts are computed exactly with Python integers (``n**2`` alone is ~2e17 for a
    DeepFashion-sized split, and products of pair counts far exceed int64), and only the final
    division is done in float64.

    Raises:
        ValueError: the table is empty / sums to zero ("no pixels were counted").
    """
    t = _checked_table(table)
    n = int(t.sum())
    bound = n * n
    sum_squares = _sum_of_squares(t[t > 0], bound)
    sum_rows = _sum_of_squares(t.sum(axis=1), bound)
    sum_cols = _sum_of_squares(t.sum(axis=0), bound)
    # Pair confusion matrix (ordered pairs), as sklearn.metrics.cluster.pair_confusion_matrix.
    tp = sum_squares - n
    fp = sum_rows - sum_squares  # together in pred, split in target
    fn = sum_cols - sum_squares  # together in target, split in pred
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


# --------------------------------------------------------------------------------------------------
# Streaming accumulation
# --------------------------------------------------------------------------------------------------


def _is_integer_dtype(x: ArrayLike) -> bool:
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex())
    return np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_


class ContingencyTable:
    """Counts co-occurrences of (predicted cluster, ground-truth class) over many images.

    ``table[i, j]`` is the number of counted pixels with predicted label ``i`` and ground-truth label
    ``j``; the int64 table ``[n_pred, n_target]`` grows as larger label ids appear. Label ids must be
    small non-negative integers (the table is dense).
    """

    def __init__(self) -> None:
        self._table = np.zeros((0, 0), dtype=np.int64)

    # -- accumulation -------------------------------------------------------------------------------

    def _grow(self, n_pred: int, n_target: int) -> None:
        rows, cols = self._table.shape
        if n_pred <= rows and n_target <= cols:
            return
        grown = np.zeros((max(rows, n_pred), max(cols, n_target)), dtype=np.int64)
        grown[:rows, :cols] = self._table
        self._table = grown

    def _add(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        self._grow(*counts.shape)
        self._table[: counts.shape[0], : counts.shape[1]] += counts

    def update(self, pred: ArrayLike, target: ArrayLike, valid: ArrayLike | None = None) -> None:
        """Add the pixels of one image (or a batch) to the table.

        Args:
            pred: int array / tensor, any shape (e.g. ``[H, W]`` or ``[B, H, W]``), predicted labels >= 0.
            target: int array / tensor of the same shape, ground-truth labels >= 0.
            valid: optional bool mask of the same shape; only pixels where it is True are counted.

        NumPy arrays and torch tensors (CPU or GPU; counting happens on the tensor's device) may be mixed.
        """
        use_torch = any(isinstance(x, torch.Tensor) for x in (pred, target, valid))
        if use_torch:
            device = next(x.device for x in (pred, target, valid) if isinstance(x, torch.Tensor))
            pred, target = (torch.as_tensor(x, device=device) for x in (pred, target))
            if valid is not None:
                valid = torch.as_tensor(valid, device=device)
        else:
            pred, target = np.asarray(pred), np.asarray(target)
            if valid is not None:
                valid = np.asarray(valid)

        for name, x in (("pred", pred), ("target", target)):
            if not _is_integer_dtype(x):
                raise TypeError(f"{name} must hold integer labels, got dtype {x.dtype}")
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        if valid is not None:
            is_bool = valid.dtype == torch.bool if use_torch else valid.dtype == np.bool_
            if not is_bool:
                raise TypeError(f"valid must be a bool mask, got dtype {valid.dtype}")
            if tuple(valid.shape) != tuple(pred.shape):
                raise ValueError(f"valid mask shape {tuple(valid.shape)} != label shape {tuple(pred.shape)}")
            pred, target = pred[valid], target[valid]
        else:
            pred, target = pred.reshape(-1), target.reshape(-1)

        n_counted = pred.numel() if use_torch else pred.size
        if n_counted == 0:
            return
        p_min, p_max = (int(v) for v in (pred.min(), pred.max()))
        t_min, t_max = (int(v) for v in (target.min(), target.max()))
        if p_min < 0 or t_min < 0:
            raise ValueError("labels must be non-negative integers")
        n_pred, n_target = p_max + 1, t_max + 1
        if n_pred * n_target > _MAX_CELLS:
            raise ValueError(
                f"label ids too large for a dense contingency table (max pred {p_max}, max target {t_max}); "
                "relabel to small consecutive integers first"
            )
        if use_torch:
            index = pred.long() * n_target + target.long()
            counts = torch.bincount(index, minlength=n_pred * n_target).cpu().numpy()
        else:
            index = pred.astype(np.int64) * n_target + target.astype(np.int64)
            counts = np.bincount(index, minlength=n_pred * n_target)
        self._add(counts.reshape(n_pred, n_target))

    def merge(self, other: ContingencyTable) -> ContingencyTable:
        """Add ``other``'s counts into this table (in place, e.g. to combine processes); returns self."""
        if not isinstance(other, ContingencyTable):
            raise TypeError(f"can only merge a ContingencyTable, got {type(other).__name__}")
        self._add(other._table)
        return self

    # -- views --------------------------------------------------------------------------------------

    @property
    def table(self) -> np.ndarray:
        """A copy of the int64 counts ``[n_pred, n_target]``."""
        return self._table.copy()

    @property
    def total(self) -> int:
        """Number of pixels counted so far."""
        return int(self._table.sum())

    def nmi(self) -> float:
        """NMI as a fraction in [0, 1]; see :func:`nmi_from_contingency`. Raises ValueError if empty."""
        return nmi_from_contingency(self._table)

    def ari(self) -> float:
        """ARI in [-1, 1]; see :func:`ari_from_contingency`. Raises ValueError if empty."""
        return ari_from_contingency(self._table)

    # -- serialisation ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Plain-Python state (lists of ints), safe for JSON and ``torch.load(weights_only=True)``."""
        return {"shape": list(self._table.shape), "table": self._table.tolist()}

    @classmethod
    def from_state_dict(cls, d: dict) -> ContingencyTable:
        """Rebuild a table from :meth:`state_dict` output (``"table"`` may also be an array / tensor)."""
        raw = d["table"]
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().numpy()
        arr = np.asarray(raw)
        if "shape" in d:
            arr = arr.reshape(tuple(int(s) for s in d["shape"]))
        if arr.ndim != 2:
            raise ValueError(f"state_dict table must be 2-D, got shape {arr.shape}")
        if arr.size and not (np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0):
            raise ValueError("state_dict table must hold non-negative integer counts")
        obj = cls()
        obj._table = arr.astype(np.int64, copy=True)
        return obj

    def __repr__(self) -> str:
        return f"ContingencyTable(shape={self._table.shape}, total={self.total})"


@dataclass
class PartMetrics:
    """FG-NMI / FG-ARI and full-image NMI / ARI accumulated over a split.

    Attributes:
        fg: foreground pixels only: predicted part vs ground-truth part label (1..N).
        full: all pixels: predicted label (0 = background) vs ground truth (0 = background).
        n_images: number of :meth:`update` calls.
    """

    fg: ContingencyTable = field(default_factory=ContingencyTable)
    full: ContingencyTable = field(default_factory=ContingencyTable)
    n_images: int = 0

    def update(self, pred_parts: ArrayLike, gt_parts: ArrayLike, fg_mask: ArrayLike | None = None) -> None:
        """Count one image.

        Args:
            pred_parts: int ``[H, W]``; 0 = background, 1..K = predicted parts (typically already masked
                by the foreground mask).
            gt_parts: int ``[H, W]``; 0 = background, 1..N = ground-truth parts.
            fg_mask: bool ``[H, W]``, the pixels used for the FG metrics; default ``gt_parts > 0``.
                (A predicted 0 inside the mask is simply one more cluster there.)
        """
        if len(pred_parts.shape) != 2:
            raise ValueError(f"expected one HxW image, got shape {tuple(pred_parts.shape)}")
        if fg_mask is None:
            fg_mask = gt_parts > 0
        self.fg.update(pred_parts, gt_parts, fg_mask)
        self.full.update(pred_parts, gt_parts)
        self.n_images += 1

    def merge(self, other: PartMetrics) -> PartMetrics:
        """Add ``other``'s counts into this object (in place); returns self."""
        self.fg.merge(other.fg)
        self.full.merge(other.full)
        self.n_images += other.n_images
        return self

    def summary(self) -> dict[str, float]:
        """``{"fg_nmi", "fg_ari", "nmi", "ari"}`` in **percent**, plus ``n_images``, ``n_pixels_fg``,
        ``n_pixels``. Raises ValueError("no pixels were counted") if a table is empty."""
        return {
            "fg_nmi": 100.0 * self.fg.nmi(),
            "fg_ari": 100.0 * self.fg.ari(),
            "nmi": 100.0 * self.full.nmi(),
            "ari": 100.0 * self.full.ari(),
            "n_images": self.n_images,
            "n_pixels_fg": self.fg.total,
            "n_pixels": self.full.total,
        }
