"""CUB-200-2011 loader (partdiscovery.data.cub) on a tiny fixture in the original layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.config import DataConfig
from partdiscovery.data import open_dataset
from partdiscovery.data.cub import (
    NUM_KEYPOINTS,
    CUBDataset,
    eval_box_fg,
    jitter_padded_box,
    pad_box,
    parse_spec_options,
    square_around,
)
from partdiscovery.data.transforms import EvalSet, TrainingSet
from partdiscovery.errors import DatasetError

# id: (relative path, class, is_train, (w, h), box (x, y, w, h))
IMAGES = {
    1: ("001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg", 1, 1, (48, 40), (8, 6, 30, 24)),
    2: ("001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg", 1, 0, (56, 44), (10, 4, 36, 30)),
    3: ("002.Laysan_Albatross/Laysan_Albatross_0003_3.jpg", 2, 1, (40, 48), (4, 10, 28, 30)),
    4: ("002.Laysan_Albatross/Laysan_Albatross_0004_4.jpg", 2, 0, (44, 44), (6, 6, 30, 30)),
    5: ("003.Sooty_Albatross/Sooty_Albatross_0005_5.jpg", 3, 0, (52, 40), (12, 8, 26, 22)),
}


def keypoints_of(image_id: int) -> np.ndarray:
    """Deterministic keypoints: even part ids visible, inside the box; odd invisible (0, 0, 0)."""
    _, _, _, _, (x, y, w, h) = IMAGES[image_id]
    kp = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    for p in range(NUM_KEYPOINTS):
        if (p + image_id) % 2 == 0:
            kp[p] = (x + (3 * p + image_id) % w, y + (5 * p + 2 * image_id) % h, 1)
    return kp


def make_cub(base: Path, segmentations: str = "inside") -> Path:
    """Write the fixture; ``segmentations``: ``inside`` CUB_200_2011/, ``beside`` it, or ``none``."""
    root = base / "CUB_200_2011"
    seg_roots = {"inside": root / "segmentations", "beside": base / "segmentations", "none": None}
    seg_root = seg_roots[segmentations]
    rng = np.random.default_rng(0)
    lines = {name: [] for name in ("images", "split", "boxes", "labels", "parts")}
    for image_id, (rel, cls, train, (w, h), (x, y, bw, bh)) in IMAGES.items():
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        (image.convert("L") if image_id == 3 else image).save(path, quality=95)  # one grayscale JPEG
        if seg_root is not None:
            soft = np.zeros((h, w), dtype=np.uint8)
            soft[y:y + bh, x:x + bw] = 255
            soft[y, x:x + bw] = 128  # >= 0.5 * 255: foreground
            soft[y + bh - 1, x:x + bw] = 127  # < 0.5 * 255: background
            seg = seg_root / Path(rel).with_suffix(".png")
            seg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(soft).save(seg)
        lines["images"].append(f"{image_id} {rel}")
        lines["split"].append(f"{image_id} {train}")
        lines["boxes"].append(f"{image_id} {float(x)} {float(y)} {float(bw)} {float(bh)}")
        lines["labels"].append(f"{image_id} {cls}")
        for p, (kx, ky, vis) in enumerate(keypoints_of(image_id), 1):
            lines["parts"].append(f"{image_id} {p} {kx} {ky} {int(vis)}")
    (root / "parts").mkdir(parents=True, exist_ok=True)
    files = (("images", "images.txt"), ("split", "train_test_split.txt"), ("boxes", "bounding_boxes.txt"),
             ("labels", "image_class_labels.txt"), ("parts", "parts/part_locs.txt"))
    for name, file in files:
        (root / file).write_text("\n".join(lines[name]) + "\n", encoding="utf-8")
    return root


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
    _, _, _, (w, h), (x, y, bw, bh) = IMAGES[2]
    assert raw.id == "2" and raw.image.size == (w, h) and raw.image.mode == "RGB"
    assert raw.part_labels is None
    np.testing.assert_array_equal(raw.keypoints, keypoints_of(2))  # file values, unchanged
    assert raw.keypoints.dtype == np.float32 and raw.keypoints.shape == (15, 3)
    assert raw.extra["object_box"] == (x, y, x + bw, y + bh)
    assert raw.bbox == pytest.approx((x - 0.05 * bw, y - 0.05 * bh, x + bw + 0.05 * bw, y + bh + 0.05 * bh))
    assert ds.object_box("2") == ds.object_box(0) == raw.extra["object_box"]
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
        half = np.zeros((10, 12), dtype=np.uint8)  # another resolution: resized (nearest) to the image
        half[:, :6] = 200
        Image.fromarray(half).save(masks / f"{image_id}.png")
    raw = CUBDataset(cub, "train", mask_dir=masks).load(0)
    w, h = IMAGES[1][3]
    assert raw.fg_mask.shape == (h, w)
    assert raw.fg_mask[:, : w // 2 - 1].all() and not raw.fg_mask[:, w // 2 + 1:].any()
    with pytest.raises(DatasetError, match=r"5\.png: mask of image id 5 is missing"):
        CUBDataset(cub, "test", mask_dir=masks)


def test_mask_dir_in_the_reference_layout(cub, tmp_path):
    """The reference's supervisedlabels: <relative image path>.png holding 0/1."""
    masks = tmp_path / "supervisedlabels"
    for image_id in (1, 3):
        rel, _, _, (w, h), _ = IMAGES[image_id]
        binary = np.zeros((h, w), dtype=np.uint8)
        binary[: h // 2] = 1
        path = masks / Path(rel).with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(binary).save(path)
    raw = open_dataset(f"cub:{cub}?mask_dir={masks}", "train").load(0)
    h = IMAGES[1][3][1]
    assert raw.fg_mask[: h // 2].all() and not raw.fg_mask[h // 2:].any()


def test_registry_spec_options_and_require_parts(cub):
    ds = open_dataset(f"cub:{cub}", "test")
    assert isinstance(ds, CUBDataset) and len(ds) == 3
    assert open_dataset(f"cub:{cub}?classes=2,3", "test").ids == ["4", "5"]
    assert parse_spec_options("/a/b?c") == ("/a/b?c", {})  # not an option string: part of the path
    assert parse_spec_options("/x?classes=1&mask_dir=/m") == ("/x", {"classes": [1], "mask_dir": "/m"})
    with pytest.raises(DatasetError, match="keypoints, not part masks"):
        open_dataset(f"cub:{cub}", "test", require_parts=True)


def test_validation_reports_every_missing_file(tmp_path):
    root = make_cub(tmp_path)
    (root / "images" / IMAGES[2][0]).unlink()
    (root / "segmentations" / Path(IMAGES[4][0]).with_suffix(".png")).unlink()
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
    images.write_text(images.read_text().replace(IMAGES[1][0], "../../outside.jpg"), encoding="utf-8")
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
    assert square_around((10, 20, 30, 30)) == (10, 15, 30, 35)
    assert pad_box((0, 0, 100, 50), 0.05) == pytest.approx((-5, -2.5, 105, 52.5))
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
