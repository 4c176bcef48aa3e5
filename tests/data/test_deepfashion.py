"""DeepFashion In-shop segmentations (partdiscovery.data.deepfashion) on a tiny original-layout fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.data import open_dataset
from partdiscovery.data.deepfashion import (
    DeepFashionDataset,
    decode_segment_colours,
    random_resized_crop_box,
)
from partdiscovery.errors import DatasetError
from tests.data.dataset_builders import DF_HEIGHT as H
from tests.data.dataset_builders import DF_SPLITS as SPLITS
from tests.data.dataset_builders import DF_WIDTH as W
from tests.data.dataset_builders import label_map, make_deepfashion, paint


@pytest.fixture(scope="module")
def deepfashion(tmp_path_factory) -> Path:
    return make_deepfashion(tmp_path_factory.mktemp("df"))


def test_splits_and_ids(deepfashion):
    assert DeepFashionDataset(deepfashion, "train").ids == [n[:-4] for n in SPLITS["train"]]
    test = DeepFashionDataset(deepfashion, "test")  # the paper's test set: query + gallery, in that order
    assert test.ids == [n[:-4] for n in SPLITS["query"] + SPLITS["gallery"]]
    assert len(DeepFashionDataset(deepfashion, "all")) == 5
    with pytest.raises(DatasetError, match="unknown DeepFashion split"):
        DeepFashionDataset(deepfashion, "val")


def test_colour_decoding_is_exact(deepfashion):
    ds = DeepFashionDataset(deepfashion, "test")
    for i in range(len(ds)):
        raw = ds.load(i)
        expected = label_map(len(SPLITS["train"]) + i)
        np.testing.assert_array_equal(raw.part_labels, expected)
        np.testing.assert_array_equal(raw.fg_mask, expected > 0)
        assert raw.part_labels.dtype == np.int64 and raw.image.size == (W, H)
    every = np.arange(16).reshape(4, 4)
    np.testing.assert_array_equal(decode_segment_colours(paint(every)), every)
    assert ds.part_names[2] == "dodgerblue4" and len(ds.part_names) == 15


def test_unknown_colour_names_the_file_and_colour(tmp_path):
    root = make_deepfashion(tmp_path)
    segment = root / "Anno" / "segmentation" / "img/WOMEN/Dresses/id_00000001/02_2_side_segment.png"
    rgb = np.asarray(Image.open(segment)).copy()
    rgb[5, 7] = (1, 2, 3)
    rgb[6, 7] = (255, 0, 1)
    Image.fromarray(rgb).save(segment)
    ds = DeepFashionDataset(root, "train")
    with pytest.raises(DatasetError) as err:
        ds.load(1)
    message = str(err.value)
    assert "02_2_side_segment.png" in message and "(1, 2, 3)" in message and "x=7, y=5" in message
    assert "2 pixel(s)" in message
    ds.load(0)  # the other image is fine


def test_images_under_img_folder(tmp_path):
    root = make_deepfashion(tmp_path, image_root="Img")
    ds = DeepFashionDataset(root, "train")
    image, segment = ds.paths(0)
    assert image == (root / "Img" / SPLITS["train"][0]).resolve()
    assert segment.name == "02_1_front_segment.png"
    np.testing.assert_array_equal(ds.load(0).part_labels, label_map(0))


def test_missing_files_are_reported_together(tmp_path):
    root = make_deepfashion(tmp_path)
    base = root / "Anno" / "segmentation"
    (base / SPLITS["query"][0]).unlink()
    (base / SPLITS["gallery"][1].replace(".jpg", "_segment.png")).unlink()
    with pytest.raises(DatasetError) as err:
        DeepFashionDataset(root, "test")
    message = str(err.value)
    assert "2 problem(s)" in message and "01_1_front.jpg: image not found" in message
    assert "03_4_full_segment.png: segment not found" in message


def test_path_escape_and_bad_json_are_refused(tmp_path):
    root = make_deepfashion(tmp_path)
    train_json = root / "Anno" / "segmentation" / "DeepFashion_segmentation_train.json"
    train_json.write_text(json.dumps({"images": [{"file_name": "../../../../etc/passwd.jpg"}]}))
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        DeepFashionDataset(root, "train")
    twice = {"images": [{"file_name": SPLITS["train"][0]}, {"file_name": SPLITS["train"][0]}]}
    train_json.write_text(json.dumps(twice))
    with pytest.raises(
        DatasetError, match=f"split 'train' lists images more than once: {SPLITS['train'][0]}"
    ):
        DeepFashionDataset(root, "train")
    train_json.write_text("{not json")
    with pytest.raises(DatasetError, match="cannot parse JSON"):
        DeepFashionDataset(root, "train")
    train_json.write_text(json.dumps({"images": [{"id": 3}]}))
    with pytest.raises(DatasetError, match=r"images\[0\] has no file_name"):
        DeepFashionDataset(root, "train")


def test_segment_size_mismatch(tmp_path):
    root = make_deepfashion(tmp_path)
    segment = root / "Anno" / "segmentation" / SPLITS["train"][0].replace(".jpg", "_segment.png")
    Image.fromarray(paint(label_map(0))[:, :20]).save(segment)
    with pytest.raises(DatasetError, match="segment is 20x56 but the image is 40x56"):
        DeepFashionDataset(root, "train").load(0)


def predicted_masks(folder: Path, by_id: bool = False) -> Path:
    """Predicted masks of the test images in the reference's layout (``<file_name>.png``, 0/1), or ``<id>.png``
    with ``by_id``: the left half."""
    for name in SPLITS["query"] + SPLITS["gallery"]:
        path = folder / ((name[:-4] if by_id else name) + ".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        binary = np.zeros((H, W), dtype=np.uint8)
        binary[:, : W // 2] = 1
        Image.fromarray(binary).save(path)
    return folder


def test_predicted_masks_replace_the_foreground_only(deepfashion, tmp_path):
    masks = predicted_masks(tmp_path / "supervisedlabels")
    ds = open_dataset(f"deepfashion:{deepfashion}?mask_dir={masks}", "test")
    raw = ds.load(1)
    assert raw.fg_mask[:, : W // 2].all() and not raw.fg_mask[:, W // 2 :].any()
    np.testing.assert_array_equal(raw.part_labels, label_map(len(SPLITS["train"]) + 1))  # still ground truth
    np.testing.assert_array_equal(raw.gt_fg_mask, raw.part_labels > 0)  # what the FG metrics count
    assert DeepFashionDataset(deepfashion, "test").load(1).gt_fg_mask is None  # fg_mask is the ground truth
    with pytest.raises(DatasetError, match="predicted mask is missing"):
        DeepFashionDataset(deepfashion, "train", mask_dir=masks)
    by_id = DeepFashionDataset(deepfashion, "test", mask_dir=predicted_masks(tmp_path / "by_id", by_id=True))
    np.testing.assert_array_equal(by_id.load(1).fg_mask, raw.fg_mask)  # the other layout the docstring names


def test_the_ground_truth_foreground_reaches_the_scores_of_a_model_and_of_a_folder(
    deepfashion, tmp_path, tiny_run
):
    """With predicted masks the FG metrics count the ground truth's pixels (``gt_fg_mask``) whichever way the split is
    scored: the segmenter's predictions and a predictions folder carry it to ``score_pixels``, not only a hand-made
    Prediction (tests/evaluation/test_evaluate.py)."""
    from partdiscovery.evaluation import read_prediction_dir, write_predictions
    from partdiscovery.segmenter import PartSegmenter

    ds = open_dataset(f"deepfashion:{deepfashion}?mask_dir={predicted_masks(tmp_path / 'masks')}", "test")
    by_model = list(PartSegmenter.load(tiny_run, device="cpu").predict_dataset(ds, progress=False))
    list(write_predictions(by_model, tmp_path / "pred"))
    by_folder = list(read_prediction_dir(tmp_path / "pred", ds))
    assert len(by_model) == len(by_folder) == len(ds)
    for index, (model, folder) in enumerate(zip(by_model, by_folder, strict=True)):
        gt_fg = ds.load(index).part_labels > 0
        assert not np.array_equal(gt_fg, model.fg_mask)  # the predicted mask is not the ground truth here
        np.testing.assert_array_equal(model.gt_fg_mask, gt_fg)
        np.testing.assert_array_equal(folder.gt_fg_mask, gt_fg)


def test_registry(deepfashion):
    ds = open_dataset(f"deepfashion:{deepfashion}", "test", require_parts=True)
    assert isinstance(ds, DeepFashionDataset) and len(ds) == 3


def test_random_resized_crop_box():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = random_resized_crop_box(60, 90, rng)
        assert 0 <= x0 < x1 <= 60 and 0 <= y0 < y1 <= 90
        area = (x1 - x0) * (y1 - y0) / (60 * 90)
        assert 0.45 <= area <= 1.0
        assert 0.7 <= (x1 - x0) / (y1 - y0) <= 1.4 or (x1 - x0, y1 - y0) == (60, 80)  # centre-crop fallback


def test_random_resized_crop_box_falls_back_to_a_centre_crop_of_the_nearest_ratio():
    """No draw fits a 10 x 200 or a 200 x 10 image (3/4 to 4/3): the centre crop of ratio 3/4 or 4/3, in y or in x."""
    rng = np.random.default_rng(0)
    assert random_resized_crop_box(10, 200, rng) == (0, 93, 10, 106)
    assert random_resized_crop_box(200, 10, rng) == (93, 0, 106, 10)
