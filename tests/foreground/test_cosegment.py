"""Coarse approaches on hand-made φ cells: the border prior picks the object cluster."""

from __future__ import annotations

import numpy as np
import pytest

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground import COARSE
from partdiscovery.foreground.cosegment import (
    NEEDS_FIT,
    BorderContrast,
    Box,
    certain_core,
    dissimilarity,
    otsu_object,
    unit_rows,
)


def two_tone_features(
    h: int = 10, w: int = 12, channels: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``[h, w, C]`` features: an object block in the middle (direction e0) on background (e1), + noise."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((h, w), bool)
    obj[3:7, 4:9] = True
    features = np.where(obj[..., None], np.eye(channels)[0], np.eye(channels)[1]) + rng.normal(
        0, 0.05, (h, w, channels)
    )
    return features.astype(np.float32), obj


def cells_of(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from partdiscovery.foreground import border_cells

    cells = np.concatenate([f.reshape(-1, f.shape[-1]) for f in images])
    on_border = np.concatenate([border_cells(*f.shape[:2]).reshape(-1) for f in images])
    return cells, on_border


@pytest.mark.parametrize("name", ["cluster2", "kmeans_border"])
def test_fitted_approaches_find_the_cluster_off_the_border(name):
    collection = [two_tone_features(seed=s) for s in range(4)]
    cells, on_border = cells_of([f for f, _ in collection])
    coarse = COARSE.build(name, cells, on_border, ForegroundConfig(clusters=3))
    assert coarse.fitted and name in NEEDS_FIT
    for features, obj in collection:
        np.testing.assert_array_equal(coarse.probability(features) > 0.5, obj)
    summary = coarse.summary()
    assert summary["clusters"] == (2 if name == "cluster2" else 3) and "centroids" not in summary


def test_border_contrast_is_per_image():
    features, obj = two_tone_features()
    coarse = COARSE.build("border_contrast", None, None, ForegroundConfig())
    assert isinstance(coarse, BorderContrast) and not coarse.fitted
    np.testing.assert_array_equal(coarse.probability(features) > 0.5, obj)
    flat = np.ones((5, 5, 3), np.float32)
    assert not coarse.probability(flat).any()  # a uniform image shows no object


def test_box_is_everything():
    coarse = COARSE.build("box", None, None, ForegroundConfig())
    assert isinstance(coarse, Box) and coarse.probability(np.zeros((3, 4, 2))).all()


def test_border_contrast_score_is_what_probability_thresholds():
    features, obj = two_tone_features()
    coarse = BorderContrast()
    score = coarse.score(features)
    assert score.shape == obj.shape and score[obj].min() > score[~obj].max()


def test_certain_core_is_the_top_fraction_of_the_object_by_score():
    probability = np.zeros((4, 5), np.float32)
    probability[1:3, 1:4] = 1.0  # 6 object cells
    score = np.arange(20, dtype=np.float32).reshape(4, 5)  # rises to the bottom right
    score[3, 4] = 99.0  # a background cell's score never makes it certain
    core = certain_core(probability, score, 1 / 3)
    expected = np.zeros((4, 5), bool)
    expected[2, 2:4] = True  # the two highest-scoring object cells
    np.testing.assert_array_equal(core, expected)
    assert certain_core(probability, score, 1.0).sum() == 6


@pytest.mark.parametrize("name", ["cluster2", "kmeans_border", "box"])
def test_approaches_without_a_graded_score_fix_nothing(name):
    features, _ = two_tone_features()
    cells, on_border = cells_of([features])
    coarse = COARSE.build(name, cells, on_border, ForegroundConfig(clusters=3))
    assert coarse.score(features) is None
    assert certain_core(coarse.probability(features), coarse.score(features), 0.05) is None


def test_certain_core_is_none_when_off_or_empty():
    score = np.ones((3, 3), np.float32)
    assert certain_core(np.ones((3, 3), np.float32), score, 0.0) is None
    assert certain_core(np.zeros((3, 3), np.float32), score, 0.05) is None


@pytest.mark.parametrize("name", ["cluster2", "kmeans_border", "box", "border_contrast", "selftrain"])
def test_maps_is_probability_and_score_in_one_pass(name):
    features, obj = two_tone_features()
    cells, on_border = cells_of([features])
    teacher = obj.reshape(-1).astype(np.float32)
    coarse = COARSE.build(name, cells, on_border, ForegroundConfig(clusters=3), teacher)
    probability, score = coarse.maps(features)
    np.testing.assert_array_equal(probability, coarse.probability(features))
    expected = coarse.score(features)
    assert (score is None) == (expected is None)
    if expected is not None:
        np.testing.assert_array_equal(score, expected)


def test_dissimilarity_averages_the_nearest_references_and_caps_their_number():
    cells = unit_rows(np.array([[1.0, 0.0], [0.0, 2.0]]))
    references = unit_rows(np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]))
    # cell 0: similarities 1, 0.707, -1 -> the two nearest average 0.854; cell 1: 0, 0.707, 0 -> 0.354
    np.testing.assert_allclose(
        dissimilarity(cells, references, 2), [1 - (1 + 0.5**0.5) / 2, 1 - 0.5**0.5 / 2]
    )
    np.testing.assert_allclose(dissimilarity(cells, references, 10), dissimilarity(cells, references, 3))


def test_otsu_object_splits_a_bimodal_score_and_finds_nothing_in_a_flat_one():
    score = np.array([[0.1, 0.1, 0.9], [0.1, 0.8, 0.9]], np.float32)
    assert otsu_object(score).tolist() == [[0, 0, 1], [0, 1, 1]]
    assert otsu_object(np.full((2, 3), 0.4, np.float32)).dtype == np.float32
    assert not otsu_object(np.full((2, 3), 0.4, np.float32)).any()


def three_clusters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of three far-apart clusters, on the border 0 %, 20 % and 80 % of the time (overall 1/3), and the
    clusters' centres as a ``[1, 3, 2]`` image (a cluster's verdict, whatever order k-means numbers them in)."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], np.float32)
    cells = np.concatenate([c + rng.normal(0, 0.05, (100, 2)) for c in centres]).astype(np.float32)
    on_border = np.zeros(300, bool)
    on_border[100:120] = on_border[200:280] = True
    return cells, on_border, centres[None]


@pytest.mark.parametrize(
    "border_ratio, expected",
    [
        (0.5, [1, 0, 0]),  # 20 % > 0.5 x 1/3: the second cluster is background
        (0.7, [1, 1, 0]),  # 20 % < 0.7 x 1/3: now it is object
        (0.0, [1, 0, 0]),  # no cluster below: the one least often on the border is the object all the same
        (10.0, [1, 1, 0]),  # every cluster below: the one most often on the border stays background
    ],
)
def test_kmeans_border_thresholds_at_border_ratio_and_keeps_one_object_and_one_background(
    border_ratio, expected
):
    """The default fixture's clusters are far either side of any ratio; these sit where ``border_ratio`` decides,
    and where the safeguards do."""
    cells, on_border, centres = three_clusters()
    coarse = COARSE.build(
        "kmeans_border", cells, on_border, ForegroundConfig(clusters=3, border_ratio=border_ratio)
    )
    assert coarse.probability(centres)[0].tolist() == expected


def test_selftrain_leaves_out_the_cells_the_first_pass_split_evenly():
    """Ambiguous teacher cells (0.7: object by a whisker) at their own place in φ: fitted on, they would make that
    place object; left out, the classifier learns only the clear object (x = 1) against the clear background."""
    rng = np.random.default_rng(0)
    places = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    cells = np.concatenate([p + rng.normal(0, 0.05, (n, 2)) for p, n in zip(places, (50, 50, 100))])
    teacher = np.concatenate([np.zeros(50), np.ones(50), np.full(100, 0.7)]).astype(np.float32)
    coarse = COARSE.build("selftrain", cells.astype(np.float32), None, ForegroundConfig(), teacher)
    background, obj, ambiguous = coarse.probability(places[None])[0]
    assert obj > 0.5 > background and ambiguous < 0.5


def test_selftrain_fits_when_the_first_pass_found_no_object_at_all():
    """A collection whose first-pass masks are all background: one class, which a classifier cannot fit alone (one
    cell's label is flipped to make two)."""
    cells, _ = cells_of([two_tone_features()[0]])
    coarse = COARSE.build("selftrain", cells, None, ForegroundConfig(), np.zeros(len(cells), np.float32))
    probability = coarse.probability(two_tone_features(seed=1)[0])
    assert probability.shape == (10, 12) and np.isfinite(probability).all()
