"""Scoring part predictions against ground truth, from a model or from a folder of label PNGs.

Both sources yield :class:`~partdiscovery.data.prediction.Prediction` objects carrying the dataset's own
ground truth, so one function (:func:`score_pixels`) scores any method the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from partdiscovery.data.base import PartDataset
from partdiscovery.data.image_io import read_labels
from partdiscovery.data.prediction import Prediction
from partdiscovery.errors import DatasetError
from partdiscovery.evaluation.metrics import PartMetrics
from partdiscovery.utils.io import atomic_save_image
from partdiscovery.utils.progress import progress as progress_bar
from partdiscovery.viz import label_image


def read_prediction_dir(
    pred_dir: str | Path, dataset: PartDataset, progress: bool = False
) -> Iterator[Prediction]:
    """Predictions stored as ``<pred_dir>/<id>.png`` (mode L, 0 = background, 1..K parts) at the
    images' original resolution, paired with ``dataset``'s ground truth."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: predictions folder does not exist")
    missing = [i for i in dataset.ids if not (pred_dir / f"{i}.png").is_file()]
    if missing:
        raise DatasetError(
            f"{pred_dir}: no prediction for {len(missing)} of {len(dataset)} images (first: {missing[0]}.png)"
        )
    for index in progress_bar(range(len(dataset)), "evaluate", progress, unit="image"):
        raw = dataset.load(index)
        path = pred_dir / f"{raw.id}.png"
        parts = read_labels(path)
        if parts.shape != raw.fg_mask.shape:
            raise DatasetError(
                f"{path}: prediction is {parts.shape[1]}x{parts.shape[0]} but the image is "
                f"{raw.fg_mask.shape[1]}x{raw.fg_mask.shape[0]}; predictions must be at the "
                "original resolution"
            )
        yield Prediction(
            id=raw.id,
            parts=parts,
            fg_mask=raw.fg_mask,
            gt_fg_mask=raw.gt_fg_mask,
            part_labels=raw.part_labels,
            keypoints=raw.keypoints,
        )


def write_predictions(predictions: Iterable[Prediction], out_dir: str | Path) -> Iterator[Prediction]:
    """Write each prediction as ``<out_dir>/<id>.png`` while passing it through (a generator)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for pred in predictions:
        atomic_save_image(out_dir / f"{pred.id}.png", label_image(pred.parts))
        yield pred


def score_pixels(predictions: Iterable[Prediction], use_given_masks: bool = True) -> dict:
    """Pixel-level FG-NMI/FG-ARI/NMI/ARI (percentages) pooled over all images.

    FG: pixels inside the ground-truth mask, predicted part vs ground-truth part. Full: every pixel,
    with the prediction's background (0) and the ground truth's background as clusters of their own.
    Where the dataset's mask is not the ground truth (DeepFashion's predicted masks, ``gt_fg_mask``), the
    prediction is cut with the dataset's mask and the FG metrics (and ``fg_iou``) count the ground truth's
    pixels, as the reference's evaluation.

    ``use_given_masks``: mask each prediction with the ground-truth foreground first, as in the paper
    (the method is given the masks). With False the prediction's own background is scored (a model
    with a learned background on raw images): predicted-background pixels inside the ground-truth
    foreground count as a cluster of their own, and ``fg_iou`` (%) of the predicted foreground is added.
    """
    metrics = PartMetrics()
    intersection = union = 0
    for pred in predictions:
        if pred.part_labels is None:
            raise DatasetError(f"image {pred.id}: has no ground-truth part labels to score against")
        fg = pred.part_labels > 0 if pred.fg_mask is None else pred.fg_mask
        parts = np.where(fg, pred.parts, 0) if use_given_masks else pred.parts
        scored = fg if pred.gt_fg_mask is None else pred.gt_fg_mask
        metrics.update(parts, pred.part_labels, scored)
        predicted_fg = pred.parts > 0
        intersection += int(np.count_nonzero(predicted_fg & scored))
        union += int(np.count_nonzero(predicted_fg | scored))
    result = metrics.summary()
    if not use_given_masks:
        result["fg_iou"] = 100.0 * intersection / max(union, 1)
    return result
