"""score_pixels against scikit-learn on hand-made predictions, with and without the given masks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from partdiscovery.data.prediction import Prediction
from partdiscovery.evaluation import score_pixels


def _prediction() -> Prediction:
    gt = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [0, 2, 2, 0], [0, 0, 0, 0]])
    parts = np.array([[1, 0, 1, 1], [0, 0, 2, 1], [0, 2, 2, 2], [0, 0, 0, 0]])  # 0 inside fg at (1, 1)
    return Prediction(id="a", parts=parts, fg_mask=gt > 0, part_labels=gt)


def test_given_masks_match_sklearn():
    pred = _prediction()
    fg = pred.fg_mask
    masked = np.where(fg, pred.parts, 0)
    result = score_pixels([pred])
    assert result["fg_nmi"] == pytest.approx(
        100 * normalized_mutual_info_score(pred.part_labels[fg], masked[fg])
    )
    assert result["ari"] == pytest.approx(100 * adjusted_rand_score(pred.part_labels.ravel(), masked.ravel()))
    assert "fg_iou" not in result


def test_own_background_is_scored_and_iou_reported():
    pred = _prediction()
    fg = pred.fg_mask
    result = score_pixels([pred], use_given_masks=False)
    # The predicted background inside the foreground is a cluster of its own; outside it counts in the full table.
    assert result["fg_nmi"] == pytest.approx(
        100 * normalized_mutual_info_score(pred.part_labels[fg], pred.parts[fg])
    )
    assert result["nmi"] == pytest.approx(
        100 * normalized_mutual_info_score(pred.part_labels.ravel(), pred.parts.ravel())
    )
    predicted = pred.parts > 0
    assert result["fg_iou"] == pytest.approx(100 * (predicted & fg).sum() / (predicted | fg).sum())


def test_a_predicted_dataset_mask_cuts_the_prediction_and_the_ground_truth_is_scored():
    """DeepFashion with predicted masks (the reference's table): predictions are cut with the dataset's mask, the FG
    metrics count the ground-truth foreground."""
    pred = _prediction()
    gt_fg = pred.part_labels > 0
    pred.fg_mask = np.zeros_like(gt_fg)
    pred.fg_mask[:, :3] = True  # a predicted mask that misses the right column and spills onto the left
    pred.gt_fg_mask = gt_fg
    cut = np.where(pred.fg_mask, pred.parts, 0)
    result = score_pixels([pred])
    assert result["fg_nmi"] == pytest.approx(
        100 * normalized_mutual_info_score(pred.part_labels[gt_fg], cut[gt_fg])
    )
    assert result["nmi"] == pytest.approx(
        100 * normalized_mutual_info_score(pred.part_labels.ravel(), cut.ravel())
    )
