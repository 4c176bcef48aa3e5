"""k-means baseline: recovers well-separated φ clusters; foreground sampling; labels in the foreground; scores
to predictions (shared with DFF)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from partdiscovery.baselines.kmeans import (
    fit_kmeans,
    predict_kmeans,
    predictions_from_scores,
    sample_foreground_pixels,
)
from tests.baselines.test_dff import SIZE, MixtureFeatures, MixtureImages

K = 3


def mixture_phi() -> MixtureFeatures:
    """φ(u) = the pixel's RGB in C = 8 dimensions, one orthogonal direction per factor: clusters that
    k-means separates exactly."""
    factors = torch.zeros(K, 8)
    factors[0, 0] = factors[1, 3] = factors[2, 6] = 1.0
    return MixtureFeatures(factors)


def test_recovers_separated_clusters_and_labels_only_the_foreground():
    phi = mixture_phi()
    model = fit_kmeans(phi, MixtureImages(6, seed=1), K, SIZE, progress=False)
    assert model.cluster_centers_.shape == (K, 8)
    preds = list(predict_kmeans(phi, model, MixtureImages(3, seed=2), SIZE, progress=False))
    fg = np.concatenate([p.fg_mask.ravel() for p in preds])
    pred = np.concatenate([p.parts.ravel() for p in preds])
    truth = np.concatenate([p.part_labels.ravel() for p in preds])
    assert (pred[~fg] == 0).all() and set(np.unique(pred[fg])) <= {1, 2, 3}
    assert normalized_mutual_info_score(truth[fg], pred[fg]) > 0.99


def test_foreground_pixels_are_sampled_per_image_and_reproducibly():
    phi, images = mixture_phi(), MixtureImages(4, seed=3)
    a = sample_foreground_pixels(phi, images, SIZE, seed=0, pixels_per_image=10, progress=False)
    b = sample_foreground_pixels(phi, images, SIZE, seed=0, pixels_per_image=10, progress=False)
    c = sample_foreground_pixels(phi, images, SIZE, seed=1, pixels_per_image=10, progress=False)
    assert a.shape == (40, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (np.abs(a).sum(axis=1) > 0).all()  # foreground only: background pixels are all zero


def test_scores_become_the_best_part_at_the_original_size_inside_the_foreground_only():
    """A 6 x 10 image letterboxed into a 10 x 10 box (rows -2..8): part 1 scores on the left half of the score map,
    part 2 on the right. The labels come back at 6 x 10, split at the image's middle column, 0 where the mask is off."""
    scores = torch.zeros(1, 2, 4, 4)
    scores[0, 0, :, :2] = 1.0
    scores[0, 1, :, 2:] = 1.0
    fg = np.ones((6, 10), dtype=bool)
    fg[0] = False
    batch = {
        "id": ["a"],
        "size": [(6, 10)],
        "box": [(0, -2, 10, 8)],
        "fg_mask_full": [fg],
        "gt_fg_mask_full": [None],
        "part_labels": [None],
        "keypoints": [None],
    }
    (pred,) = predictions_from_scores(batch, scores)
    assert pred.id == "a" and pred.parts.shape == (6, 10) and pred.parts.dtype == np.int64
    assert (pred.parts[0] == 0).all()
    assert (pred.parts[1:, :5] == 1).all() and (pred.parts[1:, 5:] == 2).all()
    assert pred.fg_mask is fg
