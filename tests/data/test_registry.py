"""The registry of dataset kinds (partdiscovery.data.registry): spec strings, kinds, their defaults.

Named ``test_dataset_registry.py``, not ``test_registry.py``: pytest imports test files by their base name
and ``tests/utils/test_registry.py`` holds that one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from partdiscovery.data import dataset_kind, dataset_root, list_datasets, open_dataset
from partdiscovery.data.cub import CUBDataset
from partdiscovery.data.part_folder import PartFolderDataset
from partdiscovery.data.registry import parse_spec_options
from partdiscovery.errors import DatasetError


def test_every_dataset_kind_is_registered():
    assert list_datasets() == ["cub", "deepfashion", "folder", "pascal-part"]


def test_unknown_dataset_kind(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset kind 'foo'.*folder"):
        open_dataset("foo:bar")


def test_kind_of_a_spec_without_opening_it():
    assert dataset_kind("cub:/nowhere/CUB_200_2011").dataset_class is CUBDataset
    assert dataset_kind("cub:/nowhere").default_protocol == "cub-keypoints"
    assert dataset_kind("pascal-part:cat:/nowhere").default_protocol == "pixel"
    for plain in ("/nowhere/folder", "folder:/nowhere", "C:\\data\\birds", "./a:b/c"):
        kind = dataset_kind(plain)
        assert kind.name == "folder" and kind.dataset_class is PartFolderDataset, plain
    with pytest.raises(DatasetError, match="choose one of: cub, deepfashion, folder, pascal-part"):
        dataset_kind("imagenet:/data")


def test_dataset_root_of_each_spec_form():
    assert dataset_root("/data/birds") == Path("/data/birds")
    assert dataset_root("folder:/data/birds") == Path("/data/birds")
    assert dataset_root("cub:/data/CUB_200_2011") == Path("/data/CUB_200_2011")
    assert dataset_root("pascal-part:cat:/data/VOC") == Path("/data/VOC")
    assert dataset_root("") is None


def test_spec_options():
    allowed = ("classes", "mask_dir")
    assert parse_spec_options("/a/b?c", allowed) == ("/a/b?c", {})  # not an option string: part of the path
    assert parse_spec_options("/x?classes=1,12&mask_dir=/m", allowed) == (
        "/x",
        {"classes": [1, 12], "mask_dir": "/m"},
    )  # several classes: comma-separated
    assert parse_spec_options("/x?mask_dir=/m", ("classes",)) == ("/x?mask_dir=/m", {})  # key not allowed
    with pytest.raises(DatasetError, match="comma-separated class ids"):
        parse_spec_options("/x?classes=a", allowed)
