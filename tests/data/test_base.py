"""The dataset contract (partdiscovery.data.base), checked on every registered dataset kind.

In the style of timm's ``tests/test_models.py``: the tests are parametrised over :func:`list_datasets`,
so a newly registered kind is checked for free, once ``dataset_builders.SPECS`` can build a tiny copy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from partdiscovery.config import DataConfig
from partdiscovery.data import PartDataset, RawSample, dataset_kind, list_datasets, open_dataset
from partdiscovery.data.base import MAX_REPORTED, find_mask_file, raise_problems, safe_join
from partdiscovery.data.transforms import EvalSet, TrainingSet
from partdiscovery.errors import DatasetError
from partdiscovery.evaluation.protocols import PROTOCOLS
from tests.data.dataset_builders import SPECS

DEFAULT_PROTOCOLS = {"cub": "cub-keypoints"}
"""Kinds whose default evaluation protocol is not ``pixel``."""


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, str]:
    return {kind: build(tmp_path_factory.mktemp(kind)) for kind, build in SPECS.items()}


def open_quietly(spec: str, split: str, **kwargs) -> PartDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the PASCAL-Part fixture lists an image without annotation
        return open_dataset(spec, split, **kwargs)


def test_every_registered_kind_has_a_tiny_fixture():
    assert set(SPECS) == set(list_datasets())


@pytest.mark.parametrize("kind", list_datasets())
@pytest.mark.parametrize("split", ["train", "test"])
def test_dataset_contract(kind, split, specs):
    spec = specs[kind]
    ds = open_quietly(spec, split)
    assert type(ds) is dataset_kind(spec).dataset_class and isinstance(ds, PartDataset)
    assert ds.split == split and ds.root is not None and type(ds).__name__ in ds.describe()
    assert len(ds) == len(ds.ids) > 0 and len(set(ds.ids)) == len(ds.ids)
    assert all(isinstance(i, str) for i in ds.ids)
    assert all(isinstance(k, int) and k > 0 and isinstance(v, str) for k, v in ds.part_names.items())
    assert ds.num_part_classes == len(ds.part_names)

    raw = ds.load(0)
    assert isinstance(raw, RawSample) and raw.id == ds.ids[0]
    assert isinstance(raw.image, Image.Image) and raw.image.mode == "RGB"
    shape = (raw.image.height, raw.image.width)
    assert raw.fg_mask.dtype == bool and raw.fg_mask.shape == shape and raw.fg_mask.any()
    if raw.part_labels is not None:
        assert raw.part_labels.dtype == np.int64 and raw.part_labels.shape == shape
        assert set(np.unique(raw.part_labels).tolist()) <= {0, *ds.part_names}
    if ds.keypoint_names:
        assert raw.keypoints.dtype == np.float32 and raw.keypoints.shape == (len(ds.keypoint_names), 3)
    else:
        assert raw.keypoints is None
    for box in (raw.bbox, raw.object_box):
        assert box is None or (len(box) == 4 and box[0] < box[2] and box[1] < box[3])
    assert isinstance(raw.mask_given, bool) and isinstance(raw.extra, dict)

    if ds.has_object_boxes:
        assert tuple(ds.object_box(0)) == tuple(ds.object_box(ds.ids[0])) == tuple(raw.object_box)
    else:
        assert ds.object_box(0) is None
    crop = ds.train_box(raw.image.width, raw.image.height, raw.bbox, np.random.default_rng(0))
    assert crop is None or (len(crop) == 4 and all(isinstance(v, int) for v in crop) and crop[0] < crop[2])


@pytest.mark.parametrize("kind", list_datasets())
def test_default_protocol_is_a_registered_protocol(kind, specs):
    expected = DEFAULT_PROTOCOLS.get(kind, "pixel")
    assert dataset_kind(specs[kind]).default_protocol == expected
    assert open_quietly(specs[kind], "test").default_protocol == expected
    assert expected in PROTOCOLS


@pytest.mark.parametrize("kind", list_datasets())
def test_training_and_evaluation_items(kind, specs):
    ds = open_quietly(specs[kind], "train")
    item = TrainingSet(ds, DataConfig(input_size=16))[(0, 7)]
    assert tuple(item["image"].shape) == (3, 16, 16) and tuple(item["fg_mask"].shape) == (1, 16, 16)
    crops = TrainingSet(ds, DataConfig(input_size=16, dataset_crops=True))[(0, 7)]
    assert tuple(crops["image"].shape) == (3, 16, 16)
    evaluation = EvalSet(ds, 16)[0]
    assert evaluation["id"] == ds.ids[0] and evaluation["mask_given"] is True
    assert tuple(evaluation["image"].shape) == (3, 16, 16)


def test_helpers_refuse_escapes_and_list_every_problem(tmp_path):
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        safe_join(tmp_path, "../x", "image id")
    (tmp_path / "b.png").write_bytes(b"")
    assert find_mask_file(tmp_path, ("a.png", "b.png")) == (tmp_path / "b.png").resolve()
    assert find_mask_file(tmp_path, ("a.png", "c.png")) == (tmp_path / "a.png").resolve()
    raise_problems(tmp_path, "train", [])
    with pytest.raises(DatasetError, match=r"3 file problem\(s\) in split 'train':\n  a\n  b\n  c"):
        raise_problems(tmp_path, "train", ["a", "b", "c"], "file")
    with pytest.raises(DatasetError) as info:  # a long list is cut at MAX_REPORTED, the rest counted
        raise_problems(tmp_path, "train", [f"p{i}" for i in range(MAX_REPORTED + 5)])
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + MAX_REPORTED + 1 and lines[-1] == "... and 5 more" and "p20" not in lines
