"""PASCAL-Part loader (partdiscovery.data.pascal_part) on tiny .mat annotations in the original layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from partdiscovery.data import open_dataset
from partdiscovery.data.pascal_part import (
    PAPER_CLASSES,
    PART_NAMES,
    PascalPartDataset,
    collapse_part_name,
    read_part_annotation,
)
from partdiscovery.errors import DatasetError
from tests.data.dataset_builders import PASCAL_HEIGHT as H
from tests.data.dataset_builders import PASCAL_OBJECTS as OBJECTS
from tests.data.dataset_builders import PASCAL_WIDTH as W
from tests.data.dataset_builders import make_pascal, rect

CAT = {n: i + 1 for i, n in enumerate(PART_NAMES["cat"])}
CAR = {n: i + 1 for i, n in enumerate(PART_NAMES["car"])}


@pytest.fixture(scope="module")
def pascal(tmp_path_factory) -> Path:
    return make_pascal(tmp_path_factory.mktemp("pascal"))


def open_cat(root: Path, split: str, **kw) -> PascalPartDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2008_000005 has no annotation
        return PascalPartDataset(root, "cat", split, **kw)


def test_instances_and_size_filters(pascal):
    assert open_cat(pascal, "train").ids == ["2008_000001_0", "2008_000002_0"]  # 15 % > 10 %
    assert open_cat(pascal, "test").ids == ["2008_000001_0", "2008_000004_0"]  # 15 % <= 20 %; '0' image read
    with pytest.warns(UserWarning, match="1 image"):
        ds = PascalPartDataset(pascal, "cat", "test")
    assert ds.missing_annotations == ["2008_000005"]


def test_labels_crop_and_foreground(pascal):
    ds = open_cat(pascal, "test", size=None)
    raw = ds.load(0)
    full = np.zeros((H, W), dtype=np.int64)
    full[8:38, 26:50] = CAT["torso"]
    full[8:21, 10:26] = CAT["head"]
    full[8:13, 10:15] = CAT["lear"]  # listed first in the file: wins where parts overlap
    # box (10, 8, 50, 38) padded by 5 % -> (8, 6.5, 52, 39.5), made square: side 44 around (30, 23)
    assert raw.extra["crop_box"] == (8, 1, 52, 45)
    np.testing.assert_array_equal(raw.part_labels, full[1:45, 8:52])
    np.testing.assert_array_equal(raw.fg_mask, raw.part_labels > 0)  # reference foreground: labelled parts
    assert raw.image.size == (44, 44)
    assert raw.object_box == pytest.approx((2, 7, 42, 37))
    assert raw.bbox == pytest.approx((0, 5.5, 44, 38.5))
    obj = open_cat(pascal, "test", size=None, foreground="object").load(0)
    assert obj.fg_mask.sum() == 40 * 30 > raw.fg_mask.sum()  # the instance mask also covers unlabelled pixels
    # Resized (twice the 44-pixel crop): the instance mask is resized too, not taken from the labelled parts.
    assert open_cat(pascal, "test", size=88, foreground="object").load(0).fg_mask.sum() == 4 * 40 * 30
    assert ds.part_names[CAT["lear"]] == "lear"


def test_crop_outside_the_image_is_black_background(pascal):
    raw = open_cat(pascal, "test", size=None).load(1)  # cat at the image corner
    assert raw.extra["crop_box"] == (-2, -7, 42, 37)
    image = np.asarray(raw.image)
    assert not image[:7].any() and not image[:, :2].any()  # outside the image: black
    assert not raw.fg_mask[:7].any() and raw.fg_mask[7:37, 2:42].all()


def test_resized_samples_and_training_crop(pascal):
    ds = open_cat(pascal, "train", size=32)
    raw = ds.load(0)
    assert raw.image.size == (32, 32) and raw.part_labels.shape == (32, 32) and raw.fg_mask.shape == (32, 32)
    assert set(np.unique(raw.part_labels)) <= {0, CAT["head"], CAT["lear"], CAT["torso"]}
    # training samples have a 15 % margin: box (10, 8, 50, 38) -> square (4, -3, 56, 49), side 52
    assert raw.extra["crop_box"] == (4, -3, 56, 49)
    assert raw.object_box == pytest.approx(tuple(v * 32 / 52 for v in (6, 11, 46, 41)))
    box = ds.train_box(32, 32, raw.bbox, np.random.default_rng(0))
    assert box[2] - box[0] == box[3] - box[1]


def test_part_names_collapse(pascal):
    assert collapse_part_name("wheel_1") == "wheel" and collapse_part_name("lear") == "lear"
    assert collapse_part_name("headlight_12") == "headlight"
    ds = PascalPartDataset(pascal, "car", "train", size=None)
    labels = ds.load(0).part_labels
    assert set(np.unique(labels)) == {0, CAR["wheel"], CAR["door"], CAR["frontside"]}
    assert (labels == CAR["wheel"]).sum() == 2 * 11 * 10  # both wheels are one part
    assert set(PAPER_CLASSES) <= set(PART_NAMES)
    assert all(list(names) == sorted(names) for names in PART_NAMES.values())


def test_unknown_part_name_is_reported(tmp_path):
    objects = {"2008_000010": [("car", rect(4, 4, 59, 43), [("spoiler_1", rect(4, 4, 10, 10))])]}
    root = make_pascal(tmp_path, objects)
    with pytest.raises(DatasetError, match=r"2008_000010.mat: object 0 \(car\) has part\(s\) spoiler"):
        PascalPartDataset(root, "car", "train")


def test_escapes_bad_lists_and_classes_are_refused(tmp_path):
    root = make_pascal(tmp_path, {"2008_000010": OBJECTS["2008_000010"]})
    lists = root / "VOC2010" / "ImageSets" / "Main"
    (lists / "car_train.txt").write_text("../../../../etc/passwd 1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        PascalPartDataset(root, "car", "train")
    (lists / "car_train.txt").write_text("2008_000010 yes\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"car_train.txt:1: expected"):
        PascalPartDataset(root, "car", "train")
    with pytest.raises(DatasetError, match="unknown PASCAL-Part class 'chair'"):
        PascalPartDataset(root, "chair", "train")
    with pytest.raises(DatasetError, match="image list is missing"):
        PascalPartDataset(root, "car", "test")
    (root / "Annotations_Part" / "2008_000010.mat").write_bytes(b"not a mat file")
    (lists / "car_train.txt").write_text("2008_000010 1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not a readable PASCAL-Part annotation"):
        PascalPartDataset(root, "car", "train")


def test_read_annotation_and_registry(pascal):
    objects = read_part_annotation(pascal / "Annotations_Part" / "2008_000001.mat")
    assert [o["class"] for o in objects] == ["cat", "cat", "dog"]
    assert [p for p, _ in objects[0]["parts"]] == ["lear", "head", "torso"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = open_dataset(f"pascal-part:cat:{pascal}", "test", require_parts=True)
    assert isinstance(ds, PascalPartDataset) and ds.ids == ["2008_000001_0", "2008_000004_0"]
    assert ds.load(0).image.size == (256, 256)  # the reference's evaluation size
    with pytest.raises(DatasetError, match="pascal-part:CLASS:PATH"):
        open_dataset("pascal-part:cat", "test")
