"""The paper's evaluation protocols, by name (Choudhury et al. 2021, Sec. 4; the reference code's notebooks).

Why a registry of protocols: each dataset of the paper is scored differently, and a number is only
comparable to the paper's when it is computed the same way. :data:`PROTOCOLS` maps a name to a runner
``fn(source: EvalSource, data: str, split: str) -> dict`` that opens the split(s) it needs, asks the
source for predictions made the way the protocol wants them (crop, masks, probabilities) and scores them
with the protocol's pure scoring function (:func:`pixel_protocol`, :func:`cub_keypoints_protocol`,
:func:`keypoint_regression`, which take predictions and are what the tests check against scikit-learn).
:func:`evaluate_protocol` (what ``partdiscovery evaluate --protocol`` calls) only builds the source and
looks the runner up; a new protocol is one registered runner, with no change here.

* ``pixel`` (part folder, DeepFashion of Liu et al. 2016, PASCAL-Part of Chen et al. 2014):
  :func:`~partdiscovery.evaluation.evaluate.score_pixels`, pixel FG-NMI/FG-ARI and NMI/ARI pooled over
  the split. PASCAL-Part: per class, then :func:`evaluate_pascal_classes` for the mean over classes.
* ``cub-keypoints`` (CUB-200-2011, Wah et al. 2011): no part masks exist, so the clusters are compared
  with the 15 keypoints. For every *visible* keypoint of every test image, the predicted label at its
  pixel is paired with the keypoint id, and NMI/ARI are computed once over all pairs of the split.
  The pixel of keypoint ``(x, y)`` is column ``floor(x)``, row ``floor(y)`` (clipped to the image), which
  is what the reference's ``grid_sample(mode="nearest")`` at ``x / W`` samples.

  - FG variant (``fg_nmi``, ``fg_ari``): the network sees the crop around the bird box
    (:func:`~partdiscovery.data.cub.eval_box_fg`) and the label is the argmax over the K parts only
    (background ignored). FG-ARI uses these labels too: the reference notebook computed FG-ARI from the
    *with-background* labels, a bug whose fix gives the 21.65 quoted by the authors for K = 4.
  - full variant (``nmi``, ``ari``): the network sees the whole image (letterboxed); background (0)
    comes from the dataset's foreground mask and is a cluster of its own. The reference used masks
    predicted for the test split (``cub:PATH?mask_dir=.../supervisedlabels``); with the ground-truth
    segmentations the background is perfect.

  From a predictions folder (hard labels at the original resolution, one folder for both variants,
  or a ``(fg_dir, full_dir)`` pair): the FG variant uses the label at the keypoint as it is, a
  predicted 0 counting as one more cluster; the full variant masks it with the foreground mask.
* ``cub-regression`` (keypoint regression, the SCOPS protocol): the soft centre of mass of every part
  inside the foreground, in units of the bird box (``(x - x0) / w``, ``(y - y0) / h``; the reference's
  crop is that box), is regressed linearly onto each keypoint (standardised inputs and targets, no
  intercept, fitted on the training images where that keypoint is visible); the error is the mean
  L2 distance over all visible test keypoints, in % of the box size (:func:`keypoint_regression`).
  CUB-001/002/003 (SCOPS) = the ``classes`` option of the cub dataset, [1], [2] or [3], for both splits.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partdiscovery.data.base import PartDataset
from partdiscovery.data.cub import KEYPOINT_NAMES, eval_box_fg
from partdiscovery.data.pascal_part import PAPER_CLASSES as PAPER_PASCAL_CLASSES
from partdiscovery.data.prediction import Prediction
from partdiscovery.errors import DatasetError, PartDiscoveryError
from partdiscovery.evaluation.evaluate import read_prediction_dir, score_pixels
from partdiscovery.evaluation.metrics import ContingencyTable
from partdiscovery.utils.registry import Registry

PROTOCOLS: Registry[dict] = Registry("evaluation protocol")
"""Name -> runner ``fn(source: EvalSource, data: str, split: str) -> dict`` (percentages, as in the
paper's tables)."""

METRIC_KEYS = ("fg_nmi", "fg_ari", "nmi", "ari")
Box = Sequence[float]


@dataclass(frozen=True)
class EvalSource:
    """What a protocol scores: a model (anything with ``predict_dataset``, e.g. a
    :class:`~partdiscovery.segmenter.PartSegmenter`) or a folder of ``<id>.png`` predictions.

    ``use_masks=False`` scores the background that the model predicted (or that a folder's label 0
    holds) instead of the dataset's masks; only the ``pixel`` protocol honours it.
    """

    model: object | None = None
    folder: str | Path | None = None
    batch_size: int = 8
    progress: bool = True
    use_masks: bool = True

    def __post_init__(self) -> None:
        if (self.model is None) == (self.folder is None):
            raise PartDiscoveryError("give exactly one of a run (model) or a predictions folder")

    @property
    def target(self):
        """The model, or the folder: what the ``evaluate_cub_*`` functions accept as ``source``."""
        return self.model if self.model is not None else self.folder

    def predict(self, dataset: PartDataset, **predict_kw) -> Iterable[Prediction]:
        """Predictions for ``dataset``: made by the model with ``predict_kw`` (``use_masks``,
        ``keep_probs``, ``box_fn``), or read from the folder (where ``predict_kw`` cannot apply)."""
        if self.model is not None:
            return self.model.predict_dataset(
                dataset, batch_size=self.batch_size, progress=self.progress, **predict_kw
            )
        return read_prediction_dir(self.folder, dataset, progress=self.progress)


# ------------------------------------------------------------------------------------------------ pixel
def pixel_protocol(predictions: Iterable[Prediction], use_given_masks: bool = True) -> dict:
    """Pixel FG-NMI/FG-ARI/NMI/ARI (percent) pooled over the split; see :func:`score_pixels`."""
    return {**score_pixels(predictions, use_given_masks), "protocol": "pixel", "given_masks": use_given_masks}


@PROTOCOLS.register("pixel")
def run_pixel(source: EvalSource, data: str, split: str) -> dict:
    """``pixel`` on any dataset with part labels; the source's masks setting decides the background."""
    from partdiscovery.data.part_folder import open_to_score

    dataset = open_to_score(data, split, require_parts=True)
    preds = source.predict(dataset, use_masks=source.use_masks)
    return pixel_protocol(preds, use_given_masks=source.use_masks)


# ------------------------------------------------------------------------------------- cub keypoints
def keypoint_pixels(
    keypoints: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keypoint ids, rows, cols)`` of the visible keypoints: pixel ``(floor(y), floor(x))``, clipped."""
    kp = np.asarray(keypoints, dtype=np.float64)
    ids = np.nonzero(kp[:, 2] > 0.5)[0]
    cols = np.clip(np.floor(kp[ids, 0]).astype(np.int64), 0, width - 1)
    rows = np.clip(np.floor(kp[ids, 1]).astype(np.int64), 0, height - 1)
    return ids.astype(np.int64), rows, cols


def _keypoints_of(pred: Prediction) -> np.ndarray:
    if pred.keypoints is None:
        raise DatasetError(f"image {pred.id}: has no keypoints (the cub-* protocols need the CUB dataset)")
    return np.asarray(pred.keypoints)


def fg_keypoint_labels(pred: Prediction, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """FG variant: argmax over the K parts (1..K) when probabilities are kept, else the label as is."""
    if pred.probs is not None:
        return np.argmax(pred.probs[1:, rows, cols], axis=0).astype(np.int64) + 1
    return np.asarray(pred.parts)[rows, cols].astype(np.int64)


def full_keypoint_labels(pred: Prediction, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Full variant: the label, 0 (background) outside the foreground mask."""
    labels = np.asarray(pred.parts)[rows, cols].astype(np.int64)
    if pred.fg_mask is not None:
        labels = np.where(np.asarray(pred.fg_mask)[rows, cols], labels, 0)
    return labels


def _accumulate(predictions: Iterable[Prediction], label_fns: dict[str, callable]) -> tuple[dict, int, int]:
    tables = {name: ContingencyTable() for name in label_fns}
    n_images = n_keypoints = 0
    for pred in predictions:
        h, w = np.asarray(pred.parts).shape
        ids, rows, cols = keypoint_pixels(_keypoints_of(pred), h, w)
        for name, fn in label_fns.items():
            tables[name].update(fn(pred, rows, cols), ids)
        n_images += 1
        n_keypoints += int(ids.size)
    return tables, n_images, n_keypoints


def cub_keypoints_protocol(
    predictions: Iterable[Prediction], fg_predictions: Iterable[Prediction] | None = None
) -> dict:
    """Keypoint NMI/ARI (percent) of CUB; see the module doc.

    Args:
        predictions: whole-image predictions (full variant; also the FG variant when ``fg_predictions``
            is None).
        fg_predictions: predictions made on the bird-box crop, with ``probs`` (FG variant).
    """
    fns = {"full": full_keypoint_labels}
    if fg_predictions is None:
        fns["fg"] = fg_keypoint_labels
    tables, n_images, n_keypoints = _accumulate(predictions, fns)
    if fg_predictions is not None:
        fg_tables, n_fg_images, n_fg_keypoints = _accumulate(fg_predictions, {"fg": fg_keypoint_labels})
        if (n_fg_images, n_fg_keypoints) != (n_images, n_keypoints):
            raise DatasetError(
                f"FG predictions cover {n_fg_images} images / {n_fg_keypoints} keypoints but "
                f"the full predictions {n_images} / {n_keypoints}; they must be of one split"
            )
        tables["fg"] = fg_tables["fg"]
    if n_keypoints == 0:
        raise DatasetError("no visible keypoint in the evaluated images; nothing to score")
    return {
        "fg_nmi": 100.0 * tables["fg"].nmi(),
        "fg_ari": 100.0 * tables["fg"].ari(),
        "nmi": 100.0 * tables["full"].nmi(),
        "ari": 100.0 * tables["full"].ari(),
        "n_images": n_images,
        "n_keypoints": n_keypoints,
        "protocol": "cub-keypoints",
    }


def evaluate_cub_keypoints(source, dataset: PartDataset, batch_size: int = 8, progress: bool = False) -> dict:
    """``cub-keypoints`` from a model or from predictions folders.

    Args:
        source: a :class:`~partdiscovery.segmenter.PartSegmenter` (anything with ``predict_dataset``):
            predicts twice, on the bird-box crop without masks keeping the probabilities (FG variant)
            and on the letterboxed image with the masks (full variant); or a predictions folder
            ``<id>.png`` (used for both variants); or a ``(fg_dir, full_dir)`` pair.
        dataset: the CUB split to score (e.g. ``open_dataset("cub:PATH", "test")``).
    """
    if hasattr(source, "predict_dataset"):
        fg = source.predict_dataset(
            dataset,
            batch_size=batch_size,
            use_masks=False,
            keep_probs=True,
            progress=progress,
            box_fn=eval_box_fg,
        )
        full = source.predict_dataset(dataset, batch_size=batch_size, use_masks=True, progress=progress)
        return cub_keypoints_protocol(full, fg_predictions=fg)
    if isinstance(source, (str, Path)):
        return cub_keypoints_protocol(read_prediction_dir(source, dataset, progress=progress))
    fg_dir, full_dir = source
    return cub_keypoints_protocol(
        read_prediction_dir(full_dir, dataset, progress=progress),
        fg_predictions=read_prediction_dir(fg_dir, dataset),
    )


@PROTOCOLS.register("cub-keypoints")
def run_cub_keypoints(source: EvalSource, data: str, split: str) -> dict:
    """``cub-keypoints`` on the ``split`` of a ``cub:`` dataset spec."""
    from partdiscovery.data import open_dataset

    return evaluate_cub_keypoints(
        source.target, open_dataset(data, split), source.batch_size, source.progress
    )


# ------------------------------------------------------------------------------------ cub regression
def part_centres(pred: Prediction, box: Box | None = None) -> np.ndarray:
    """``float64 [K, 2]`` soft centre of mass ``(x, y)`` of every part inside the foreground and ``box``,
    in box units (``(x - x0) / (x1 - x0)``, pixel index coordinates like the keypoints).

    Uses ``pred.probs[1:]`` when present, else the hard labels 1..max as one-hot maps. A part with no
    mass gets the box centre (0.5, 0.5).
    """
    parts = np.asarray(pred.parts)
    h, w = parts.shape
    x0, y0, x1, y1 = (float(v) for v in (box if box is not None else (0, 0, w, h)))
    bx0, by0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    bx1, by1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    fg = np.ones((h, w), dtype=bool) if pred.fg_mask is None else np.asarray(pred.fg_mask, dtype=bool)
    fg = fg[by0:by1, bx0:bx1]
    xs = np.arange(bx0, bx1, dtype=np.float64)
    ys = np.arange(by0, by1, dtype=np.float64)
    if pred.probs is not None:
        weights = np.asarray(pred.probs[1:, by0:by1, bx0:bx1], dtype=np.float64) * fg[None]
        mass = weights.sum(axis=(1, 2))
        sx = weights.sum(axis=1) @ xs
        sy = weights.sum(axis=2) @ ys
    else:
        labels = parts[by0:by1, bx0:bx1]
        k = int(parts.max(initial=0))
        inside = fg & (labels > 0)
        lab = labels[inside]
        gy, gx = np.nonzero(inside)
        mass = np.bincount(lab, minlength=k + 1)[1:].astype(np.float64)
        sx = np.bincount(lab, weights=gx + bx0, minlength=k + 1)[1:]
        sy = np.bincount(lab, weights=gy + by0, minlength=k + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.where(mass > 0, sx / mass, (x0 + x1) / 2)
        cy = np.where(mass > 0, sy / mass, (y0 + y1) / 2)
    return np.stack([(cx - x0) / (x1 - x0), (cy - y0) / (y1 - y0)], axis=1)


def _collect(predictions: Iterable[Prediction], boxes: Mapping[str, Box] | None):
    centres, keypoints = [], []
    for pred in predictions:
        kp = _keypoints_of(pred).astype(np.float64)
        h, w = np.asarray(pred.parts).shape
        if boxes is not None and pred.id not in boxes:
            raise DatasetError(f"image {pred.id}: no box given to normalise its coordinates")
        box = boxes[pred.id] if boxes is not None else (0.0, 0.0, float(w), float(h))
        x0, y0, x1, y1 = (float(v) for v in box)
        normed = np.stack([(kp[:, 0] - x0) / (x1 - x0), (kp[:, 1] - y0) / (y1 - y0), kp[:, 2] > 0.5], axis=1)
        centres.append(part_centres(pred, box))
        keypoints.append(normed)
    return centres, keypoints


def _stack(centres: list[np.ndarray], k: int) -> np.ndarray:
    out = np.full((len(centres), k, 2), 0.5)
    for i, c in enumerate(centres):
        out[i, : c.shape[0]] = c
    return out.reshape(len(centres), 2 * k)


def keypoint_regression(
    train_preds: Iterable[Prediction],
    test_preds: Iterable[Prediction],
    boxes: Mapping[str, Box] | None = None,
    keypoint_names: Sequence[str] = KEYPOINT_NAMES,
) -> dict:
    """Keypoint regression error (SCOPS protocol) from part centres; see the module doc.

    Args:
        train_preds, test_preds: predictions with ``keypoints`` (and ``probs`` for soft centres).
        boxes: ``{id: (x0, y0, x1, y1)}`` normalising box of every image (CUB: the annotated bird box);
            default the whole image.

    Returns:
        ``error`` (mean L2 distance over all visible test keypoints, % of the box size),
        ``per_keypoint_error``, ``n_keypoints`` (test keypoints scored), ``n_train_images``,
        ``n_test_images``, ``skipped_keypoints`` (visible in test but never in train), ``protocol``.

    Per keypoint, ``y = A x`` is solved by least squares on standardised centres ``x`` (2K values) and
    standardised keypoint coordinates ``y`` of the training images where it is visible
    (``StandardScaler`` + ``LinearRegression(fit_intercept=False)``, as the reference).
    """
    from sklearn.linear_model import LinearRegression  # imported here: keeps the CLI start-up light
    from sklearn.preprocessing import StandardScaler

    train_c, train_k = _collect(train_preds, boxes)
    test_c, test_k = _collect(test_preds, boxes)
    if not train_c or not test_c:
        raise DatasetError("keypoint regression needs predictions for both the train and the test split")
    k = max(c.shape[0] for c in train_c + test_c)
    x_train, x_test = _stack(train_c, k), _stack(test_c, k)
    kp_train, kp_test = np.stack(train_k), np.stack(test_k)
    total, count, per_keypoint, skipped = 0.0, 0, {}, []
    for j in range(kp_train.shape[1]):
        name = keypoint_names[j] if j < len(keypoint_names) else str(j + 1)
        fit, ev = kp_train[:, j, 2] > 0, kp_test[:, j, 2] > 0
        if not ev.any():
            continue
        if not fit.any():
            skipped.append(name)
            continue
        # The reference's regression (interpretability-by-parts / SCOPS evaluation), verbatim in sklearn.
        scale_x, scale_y = StandardScaler().fit(x_train[fit]), StandardScaler().fit(kp_train[fit, j, :2])
        regressor = LinearRegression(fit_intercept=False)
        regressor.fit(scale_x.transform(x_train[fit]), scale_y.transform(kp_train[fit, j, :2]))
        predicted = scale_y.inverse_transform(regressor.predict(scale_x.transform(x_test[ev])))
        dist = np.linalg.norm(predicted - kp_test[ev, j, :2], axis=1)
        per_keypoint[name] = 100.0 * float(dist.mean())
        total += float(dist.sum())
        count += int(dist.size)
    if count == 0:
        raise DatasetError("no test keypoint could be scored (none visible, or none visible in training)")
    return {
        "error": 100.0 * total / count,
        "per_keypoint_error": per_keypoint,
        "n_keypoints": count,
        "n_train_images": len(train_c),
        "n_test_images": len(test_c),
        "num_parts": k,
        "skipped_keypoints": skipped,
        "protocol": "cub-regression",
    }


def cub_regression_protocol(
    predictions: Iterable[Prediction],
    train_predictions: Iterable[Prediction] | None = None,
    boxes: Mapping[str, Box] | None = None,
) -> dict:
    """``keypoint_regression(train_predictions, predictions, boxes)``; the regressor needs the train split."""
    if train_predictions is None:
        raise PartDiscoveryError(
            "cub-regression needs train_predictions (the regressor is fitted on the train split)"
        )
    return keypoint_regression(train_predictions, predictions, boxes=boxes)


def _boxes_of(*datasets: PartDataset) -> dict[str, Box] | None:
    if not all(d.has_object_boxes for d in datasets):
        return None
    return {i: d.object_box(i) for d in datasets for i in d.ids}


def evaluate_cub_regression(
    source, train_dataset: PartDataset, test_dataset: PartDataset, batch_size: int = 8, progress: bool = False
) -> dict:
    """``cub-regression`` from a model (soft maps predicted on the bird-box crop, masked) or a predictions
    folder holding ``<id>.png`` for the images of both splits (hard labels as probabilities)."""
    boxes = _boxes_of(train_dataset, test_dataset)

    def predictions(dataset):
        if hasattr(source, "predict_dataset"):
            return source.predict_dataset(
                dataset,
                batch_size=batch_size,
                use_masks=True,
                keep_probs=True,
                progress=progress,
                box_fn=eval_box_fg,
            )
        return read_prediction_dir(source, dataset, progress=progress)

    return keypoint_regression(predictions(train_dataset), predictions(test_dataset), boxes=boxes)


@PROTOCOLS.register("cub-regression")
def run_cub_regression(source: EvalSource, data: str, split: str) -> dict:
    """``cub-regression``: the regressor is fitted on the train split and scored on ``split``."""
    from partdiscovery.data import open_dataset

    return evaluate_cub_regression(
        source.target,
        open_dataset(data, "train"),
        open_dataset(data, split),
        source.batch_size,
        source.progress,
    )


# ----------------------------------------------------------------------------------- pascal + dispatch
def evaluate_pascal_classes(results_by_class: Mapping[str, Mapping]) -> dict:
    """Per-class PASCAL-Part results (``{class: pixel result}``) plus their unweighted mean over classes,
    as in the paper's table. ``missing_paper_classes`` lists paper classes not given."""
    if not results_by_class:
        raise ValueError("no per-class results given")
    results = {c: dict(r) for c, r in results_by_class.items()}
    mean = {
        k: float(np.mean([r[k] for r in results.values()]))
        for k in METRIC_KEYS
        if all(k in r for r in results.values())
    }
    return {
        "per_class": results,
        "mean": mean,
        "classes": sorted(results),
        "n_classes": len(results),
        "missing_paper_classes": [c for c in PAPER_PASCAL_CLASSES if c not in results],
        "protocol": "pascal-part-classes",
    }


def default_protocol(dataset: PartDataset | str) -> str:
    """The protocol a dataset is scored with unless told otherwise: its kind's ``default_protocol``
    (``cub-keypoints`` for CUB, ``pixel`` for part folders and the others), from a dataset or a spec."""
    from partdiscovery.data import dataset_kind

    if isinstance(dataset, (str, Path)):
        return dataset_kind(dataset).default_protocol
    return dataset.default_protocol


def evaluate_protocol(
    protocol: str,
    data: str,
    split: str = "test",
    run: str | None = None,
    predictions: str | None = None,
    device: str = "auto",
    progress: bool = True,
    batch_size: int = 8,
    use_masks: bool = True,
    refine: str | None = None,
) -> dict:
    """Score a run (model) or a predictions folder on dataset spec ``data`` with ``protocol``.

    What ``partdiscovery evaluate --protocol NAME`` calls. ``cub-regression`` also reads the train split
    (a predictions folder must then hold both splits). ``use_masks=False`` scores a model's learned
    background instead of the dataset's masks (``pixel`` protocol only). ``refine`` overrides the model's
    ``predict.refine`` (how its part maps are snapped to the image's edges).
    """
    runner = PROTOCOLS.get(protocol)  # unknown names fail here, listing the valid ones
    if bool(run) == bool(predictions):
        raise PartDiscoveryError("give exactly one of a run (model) or a predictions folder")
    from partdiscovery.segmenter import PartSegmenter

    model = PartSegmenter.load(run, device=device, refine=refine) if run else None
    if model is not None and not use_masks and not model.has_learned_background:
        warnings.warn(
            f"{run}: has no learned background, so without the dataset's masks the whole image is its "
            "foreground (fg_iou is the foreground's share of the image)",
            stacklevel=2,
        )
    source = EvalSource(
        model=model,
        folder=predictions,
        batch_size=batch_size,
        progress=progress,
        use_masks=use_masks,
    )
    result = runner(source, data, split)
    return {**result, "split": split, "data": str(data), "source": str(predictions or run)}


__all__ = [
    "PAPER_PASCAL_CLASSES",
    "PROTOCOLS",
    "EvalSource",
    "cub_keypoints_protocol",
    "cub_regression_protocol",
    "default_protocol",
    "evaluate_cub_keypoints",
    "evaluate_cub_regression",
    "evaluate_pascal_classes",
    "evaluate_protocol",
    "fg_keypoint_labels",
    "full_keypoint_labels",
    "keypoint_pixels",
    "keypoint_regression",
    "part_centres",
    "pixel_protocol",
    "run_cub_keypoints",
    "run_cub_regression",
    "run_pixel",
]
