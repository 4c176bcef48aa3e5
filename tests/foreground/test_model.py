"""ForegroundModel: fitted on a collection, it finds the obvious object of every image."""

from __future__ import annotations

import numpy as np
import pytest

from partdiscovery.config import ForegroundConfig
from partdiscovery.foreground import ForegroundModel, list_coarse, list_refiners
from partdiscovery.foreground.model import collect_fit_cells, fit_subset, upsample
from partdiscovery.utils.registry import UnknownNameError


@pytest.mark.parametrize("coarse", ["border_contrast", "cluster2", "selftrain"])
def test_obvious_object_is_found(collection, phi, iou, coarse):
    images = [image for image, _ in collection]
    scores = {}
    for refine in ("none", "grabcut"):
        cfg = ForegroundConfig(coarse=coarse, refine=refine, input_size=128, fit_pixels=3000)
        model = ForegroundModel.fit(images, cfg, phi=phi)
        scores[refine] = [iou(model.predict(image), gt) for image, gt in collection]
    # φ's stride-8 grid alone is coarse (a blob around the object); GrabCut snaps it to the ellipse's edge.
    assert min(scores["grabcut"]) > 0.8, scores
    assert min(scores["none"]) > 0.3, scores


def test_fit_accepts_loaders_and_predicts_any_size(collection, phi):
    cfg = ForegroundConfig(coarse="cluster2", input_size=96, fit_pixels=2000)
    model = ForegroundModel.fit([lambda im=im: im for im, _ in collection], cfg, phi=phi)
    image = collection[0][0].resize((150, 70))
    mask = model.predict(image)
    assert mask.shape == (70, 150) and mask.dtype == bool
    assert model.coarse.foreground.sum() == 1


def test_unknown_approach_lists_the_valid_names(collection, phi):
    with pytest.raises(UnknownNameError, match="border_contrast"):
        ForegroundModel.fit([collection[0][0]], ForegroundConfig(coarse="magic"), phi=phi)
    assert {"box", "border_contrast", "cluster2", "kmeans_border"} <= set(list_coarse())
    assert {"grabcut", "none"} <= set(list_refiners())


def test_helpers():
    assert fit_subset(5, 10) == [0, 1, 2, 3, 4]
    assert fit_subset(100, 3) == [0, 50, 99]
    assert upsample(np.eye(2, dtype=np.float32), 8, 8).shape == (8, 8)


def test_collect_fit_cells(collection, phi):
    images = [image for image, _ in collection[:3]]
    cfg = ForegroundConfig(coarse="selftrain", input_size=64, fit_pixels=10_000, fit_images=2)
    cells, on_border, teacher = collect_fit_cells(images, cfg, phi)
    # 2 of the 3 images, every one of their 8 x 8 cells; the teacher marks the ellipse's cells as object.
    assert cells.shape == (2 * 64, phi.channels) and on_border.sum() == 2 * 28
    assert (
        teacher.shape == (128,)
        and 0.05 < (teacher > 0.5).mean() < 0.5
        and not (teacher[on_border] > 0.5).any()
    )
    _, _, none = collect_fit_cells(images, ForegroundConfig(coarse="cluster2", input_size=64), phi)
    assert none is None
    # A budget smaller than the cells: fit_pixels is split over the images (10 of each), not taken from each one.
    few = ForegroundConfig(coarse="cluster2", input_size=64, fit_pixels=20, fit_images=2)
    cells, on_border, _ = collect_fit_cells(images, few, phi)
    assert cells.shape == (20, phi.channels) and on_border.shape == (20,)
    assert upsample(np.eye(2, dtype=np.float32), 8, 8).shape == (8, 8)


def test_coarse_maps_give_the_refiner_a_certain_core_inside_the_coarse_mask(collection, phi):
    image, gt = collection[0]
    fixed = ForegroundModel.fit([image], ForegroundConfig(input_size=128, certain_fraction=0.2), phi=phi)
    probability, certain = fixed.coarse_maps(image)
    assert probability.shape == certain.shape == gt.shape and certain.dtype == bool
    assert certain.any() and not (certain & (probability < 0.5)).any()
    assert 0.05 < certain.sum() / (probability >= 0.5).sum() < 0.4
    assert gt[certain].mean() > gt[probability >= 0.5].mean()  # the core is more object than the blob
    off = ForegroundModel.fit([image], ForegroundConfig(input_size=128, certain_fraction=0.0), phi=phi)
    assert off.coarse_maps(image)[1] is None
    np.testing.assert_array_equal(off.coarse_probability(image), probability)


def test_coarse_maps_scores_each_image_once(collection, phi, monkeypatch):
    image, _ = collection[0]
    model = ForegroundModel.fit([image], ForegroundConfig(input_size=128), phi=phi)
    calls = []
    score = type(model.coarse).score
    monkeypatch.setattr(type(model.coarse), "score", lambda self, f: calls.append(1) or score(self, f))
    model.coarse_maps(image)
    assert len(calls) == 1


def test_teacher_labels_are_the_first_mask_on_phis_grid_of_a_wide_image(collection, phi):
    """A wide crop (96 x 48 pixels, 12 x 6 cells) of an image whose object is off-centre: a mask transposed on its
    way to φ's grid would not keep the object's cells (the square fixture images hid that)."""
    from partdiscovery.foreground.features import image_features
    from partdiscovery.foreground.model import teacher_labels

    image, gt = collection[0]
    box = (0, 24, 96, 72)
    wide, gt = image.crop(box), gt[box[1] : box[3], box[0] : box[2]]
    cfg = ForegroundConfig(input_size=96)
    features = image_features(phi, wide, cfg.input_size)
    teacher = teacher_labels(wide, features, cfg)
    expected = gt.reshape(6, 8, 12, 8).mean((1, 3))  # the object fraction of each 8 x 8 cell
    assert teacher.shape == expected.shape == features.shape[:2] == (6, 12)
    assert np.abs(teacher - expected).mean() < 0.1
