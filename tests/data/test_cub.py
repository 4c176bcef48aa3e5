"""CUB-200-2011 loader (partdiscovery.data.cub) on a tiny fixture in the original layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.config import DataConfig
from partdiscovery.data import open_dataset
from partdiscovery.data.boxes import jitter_padded_box
from partdiscovery.data.cub import CUBDataset, eval_box_fg
from partdiscovery.data.transforms import EvalSet, TrainingSet
from partdiscovery.errors import DatasetError
from tests.data.dataset_builders import CUB_IMAGES, keypoints_of, make_cub


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    return make_cub(tmp_path_factory.mktemp("cub"))


def test_splits_classes_and_ids(cub):
    assert CUBDataset(cub, "train").ids == ["1", "3"]
    assert CUBDataset(cub, "test").ids == ["2", "4", "5"]
    assert CUBDataset(cub, "all").ids == ["1", "2", "3", "4", "5"]
    assert CUBDataset(cub, "test", classes=[2]).ids == ["4"]
    assert CUBDataset(cub, "train", classes=[1, 2]).ids == ["1", "3"]
    assert CUBDataset(cub.parent, "train").root == cub  # the folder holding CUB_200_2011/ works too
    with pytest.raises(DatasetError, match="class id"):
        CUBDataset(cub, "test", classes=[7])
    with pytest.raises(DatasetError, match="split 'train' has no images"):
        CUBDataset(cub, "train", classes=[3])


def test_sample_contents(cub):
    ds = CUBDataset(cub, "test")
    raw = ds.load(0)  # image id 2
    _, _, _, (w, h), (x, y, bw, bh) = CUB_IMAGES[2]
    assert raw.id == "2" and raw.image.size == (w, h) and raw.image.mode == "RGB"
    assert raw.part_labels is None
    np.testing.assert_array_equal(raw.keypoints, keypoints_of(2))  # file values, unchanged
    assert raw.keypoints.dtype == np.float32 and raw.keypoints.shape == (15, 3)
    assert raw.object_box == (x, y, x + bw, y + bh)
    assert raw.bbox == pytest.approx((x - 0.05 * bw, y - 0.05 * bh, x + bw + 0.05 * bw, y + bh + 0.05 * bh))
    assert ds.object_box("2") == ds.object_box(0) == raw.object_box
    # soft mask: 128 counts as foreground, 127 does not
    assert raw.fg_mask.dtype == bool and raw.fg_mask.shape == (h, w)
    assert raw.fg_mask[y, x] and not raw.fg_mask[y + bh - 1, x]
    assert raw.fg_mask.sum() == (bh - 1) * bw
    gray = CUBDataset(cub, "train").load(1)  # image id 3 was saved as a grayscale JPEG
    assert gray.image.mode == "RGB"


def test_segmentations_beside_the_folder_and_missing(tmp_path):
    root = make_cub(tmp_path / "beside", segmentations="beside")
    ds = CUBDataset(root, "train")
    assert ds.segmentation_root == root.parent / "segmentations"
    assert ds.load(0).fg_mask.any()
    bare = make_cub(tmp_path / "bare", segmentations="none")
    with pytest.raises(DatasetError, match="segmentations"):
        CUBDataset(bare, "train")


def test_mask_dir_replaces_ground_truth(cub, tmp_path):
    masks = tmp_path / "pred_masks"
    masks.mkdir()
    for image_id in ("1", "3"):
        half = np.full((10, 12), 100, dtype=np.uint8)  # another resolution: resized (nearest) to the image
        half[:, :6] = 200  # soft 0..255 values: object from 0.5 * 255 on (100 is background, not merely > 0)
        Image.fromarray(half).save(masks / f"{image_id}.png")
    raw = CUBDataset(cub, "train", mask_dir=masks).load(0)
    w, h = CUB_IMAGES[1][3]
    assert raw.fg_mask.shape == (h, w)
    assert raw.fg_mask[:, : w // 2 - 1].all() and not raw.fg_mask[:, w // 2 + 1 :].any()
    with pytest.raises(DatasetError, match=r"5\.png: mask of image id 5 is missing"):
        CUBDataset(cub, "test", mask_dir=masks)


def test_mask_dir_in_the_reference_layout(cub, tmp_path):
    """The reference's supervisedlabels: <relative image path>.png holding 0/1."""
    masks = tmp_path / "supervisedlabels"
    for image_id in (1, 3):
        rel, _, _, (w, h), _ = CUB_IMAGES[image_id]
        binary = np.zeros((h, w), dtype=np.uint8)
        binary[: h // 2] = 1
        path = masks / Path(rel).with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(binary).save(path)
    raw = open_dataset(f"cub:{cub}?mask_dir={masks}", "train").load(0)
    h = CUB_IMAGES[1][3][1]
    assert raw.fg_mask[: h // 2].all() and not raw.fg_mask[h // 2 :].any()


def test_registry_spec_options_and_require_parts(cub):
    ds = open_dataset(f"cub:{cub}", "test")
    assert isinstance(ds, CUBDataset) and len(ds) == 3
    assert open_dataset(f"cub:{cub}?classes=2,3", "test").ids == ["4", "5"]
    with pytest.raises(DatasetError, match="keypoints, not part masks"):
        open_dataset(f"cub:{cub}", "test", require_parts=True)


def test_validation_reports_every_missing_file(tmp_path):
    root = make_cub(tmp_path)
    (root / "images" / CUB_IMAGES[2][0]).unlink()
    (root / "segmentations" / Path(CUB_IMAGES[4][0]).with_suffix(".png")).unlink()
    with pytest.raises(DatasetError) as err:
        CUBDataset(root, "test")
    message = str(err.value)
    assert "2 file problem(s)" in message
    assert "Black_Footed_Albatross_0002_2.jpg: image of image id 2 is missing" in message
    assert "Laysan_Albatross_0004_4.png: mask of image id 4 is missing" in message
    assert len(CUBDataset(root, "test", validate=False)) == 3


def test_path_escapes_and_malformed_lines_are_refused(tmp_path):
    root = make_cub(tmp_path)
    images = root / "images.txt"
    images.write_text(images.read_text().replace(CUB_IMAGES[1][0], "../../outside.jpg"), encoding="utf-8")
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        CUBDataset(root, "train")
    boxes = root / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text() + "6 1.0 2.0\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bounding_boxes.txt:6: expected 5 fields"):
        CUBDataset(root, "train")


def test_incomplete_annotations_are_reported(tmp_path):
    root = make_cub(tmp_path)
    parts = root / "parts" / "part_locs.txt"
    kept = [line for line in parts.read_text().splitlines() if not line.startswith("4 15 ")]
    parts.write_text("\n".join(kept), encoding="utf-8")
    with pytest.raises(DatasetError, match="do not have all 15 keypoints"):
        CUBDataset(root, "test")


def test_boxes_and_crops(cub):
    ds = CUBDataset(cub, "test")
    raw = ds.load(0)
    x0, y0, x1, y1 = eval_box_fg(raw)
    assert x1 - x0 == y1 - y0 == 36  # square of side max(w, h) of the annotated box
    assert (x0 + x1) / 2 == pytest.approx(10 + 36 / 2) and (y0 + y1) / 2 == pytest.approx(4 + 30 / 2)
    item = EvalSet(ds, 32, box_fn=eval_box_fg)[0]
    assert item["box"] == eval_box_fg(raw) and tuple(item["image"].shape) == (3, 32, 32)
    rng = np.random.default_rng(0)
    for _ in range(50):  # the reference's jitter: every side within 5 % of the tight size, then square
        bx0, by0, bx1, by1 = jitter_padded_box(raw.bbox, rng)
        assert bx1 - bx0 == by1 - by0
        assert 36 * 1.0 - 2 <= bx1 - bx0 <= 36 * 1.2 + 2


def test_training_set_uses_the_padded_box(cub):
    ds = CUBDataset(cub, "train")
    train = TrainingSet(ds, DataConfig(input_size=24))
    item = train[(0, 123)]
    assert tuple(item["image"].shape) == (3, 24, 24) and tuple(item["fg_mask"].shape) == (1, 24, 24)
    assert item["fg_mask"].mean() > 0.3  # the crop is centred on the bird, not on the whole image
    box = ds.train_box(48, 40, ds.load(0).bbox, np.random.default_rng(1))  # the optional hook
    assert box[2] - box[0] == box[3] - box[1]
