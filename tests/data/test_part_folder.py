"""The part folder format: every bad input is a DatasetError naming the file; odd images are converted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_builders import FOLDER_HEIGHT as H
from dataset_builders import FOLDER_WIDTH as W
from dataset_builders import make_folder, mask_array, rgb_image
from PIL import Image

from partdiscovery.data import PartFolderDataset, open_dataset
from partdiscovery.data.image_io import read_image, read_labels, read_mask
from partdiscovery.data.part_folder import HOLDOUT_SPLIT, ImageFolderDataset, validation_ids
from partdiscovery.errors import DatasetError


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "ds")


def problems_of(root: Path, split: str = "train", **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        PartFolderDataset(root, split, **kwargs)
    return str(info.value)


def test_valid_folder_loads(folder):
    ds = PartFolderDataset(folder, "train")
    assert ds.ids == ["a", "b", "c"] and len(ds) == 3
    assert ds.part_names == {1: "left", 2: "right"} and ds.num_part_classes == 2
    s = ds.load(1)
    assert s.id == "b" and s.image.mode == "RGB" and s.image.size == (W, H)
    assert s.fg_mask.dtype == bool and s.fg_mask.shape == (H, W) and s.fg_mask.sum() == (H - 4) * (W - 6)
    assert s.part_labels.dtype == np.int64 and set(np.unique(s.part_labels)) == {0, 1, 2}
    assert np.array_equal(np.asarray(s.image), np.asarray(rgb_image()))
    assert open_dataset(folder, "test").ids == ["a"]
    assert open_dataset(f"folder:{folder}", "all").ids == ["a", "b", "c"]


# ------------------------------------------------------------------------------------- bad inputs
def test_missing_mask(folder):
    (folder / "masks" / "b.png").unlink()
    assert str(folder / "masks" / "b.png") in problems_of(folder)


def test_mask_size_mismatch(folder):
    Image.fromarray(mask_array(10, 10)).save(folder / "masks" / "b.png")
    message = problems_of(folder)
    assert str(folder / "masks" / "b.png") in message and "10x10" in message and f"{W}x{H}" in message


def test_non_binary_mask(folder):
    mask = mask_array()
    mask[5, 5] = 128
    Image.fromarray(mask).save(folder / "masks" / "c.png")
    message = problems_of(folder)
    assert str(folder / "masks" / "c.png") in message and "not binary" in message


def test_unreadable_image(folder):
    (folder / "images" / "b.png").write_bytes(b"this is not a picture at all" * 10)
    assert str(folder / "images" / "b.png") in problems_of(folder)


def test_truncated_image_is_reported_with_its_name(folder):
    path = folder / "images" / "b.jpg"
    (folder / "images" / "b.png").unlink()
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    big.save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError) as info:
        ds = PartFolderDataset(folder, "train")  # header is intact: may pass validation ...
        for i in range(len(ds)):
            ds.load(i)  # ... but decoding must fail with the file's name, not a bare OSError
    assert str(path) in str(info.value)


def test_zero_byte_image_and_mask(folder):
    (folder / "images" / "a.png").write_bytes(b"")
    (folder / "masks" / "b.png").write_bytes(b"")
    message = problems_of(folder)
    assert str(folder / "images" / "a.png") in message
    assert str(folder / "masks" / "b.png") in message and "0 bytes" in message


def test_empty_foreground(folder):
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(folder / "masks" / "a.png")
    message = problems_of(folder)
    assert str(folder / "masks" / "a.png") in message and "no foreground" in message


def test_split_lists_a_missing_id(folder):
    (folder / "train.txt").write_text("a\nzzz\n")
    message = problems_of(folder)
    assert str(folder / "images" / "zzz") in message and "train.txt" in message


@pytest.mark.parametrize("bad_id", ["../x", "../../etc/passwd", "/etc/passwd"])
def test_ids_escaping_the_root_are_refused(folder, bad_id):
    Image.new("RGB", (W, H)).save(folder / "x.png")  # exists, but outside images/
    (folder / "train.txt").write_text(f"a\n{bad_id}\n")
    message = problems_of(folder)
    assert bad_id in message and "outside" in message


def test_missing_parts_label_and_parts_size_mismatch(folder):
    (folder / "parts" / "a.png").unlink()
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(folder / "parts" / "b.png")
    message = problems_of(folder)
    assert str(folder / "parts" / "a.png") in message and str(folder / "parts" / "b.png") in message


def test_all_problems_are_reported_at_once(folder):
    make_folder(folder, ids=("a", "b", "c", "d", "e"))
    (folder / "masks" / "a.png").unlink()
    (folder / "images" / "b.png").write_bytes(b"")
    Image.fromarray(mask_array(9, 9)).save(folder / "masks" / "c.png")
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(folder / "masks" / "d.png")
    (folder / "train.txt").write_text("a\nb\nc\nd\ne\nmissing\n")
    message = problems_of(folder)
    # c's mask also disagrees with c's part labels: six problems in five ids, all in one message.
    assert "6 problem(s)" in message
    for path in (
        "masks/a.png",
        "images/b.png",
        "masks/c.png",
        "parts/c.png",
        "masks/d.png",
        "images/missing",
    ):
        assert str(folder / path) in message
    assert "/e.png" not in message


def test_folder_level_errors(tmp_path, folder):
    assert "does not exist" in problems_of(tmp_path / "nowhere")
    (folder / "test.txt").write_text("# only a comment\n\n")
    assert str(folder / "test.txt") in problems_of(folder, "test")
    (folder / "test.txt").write_text("a\nb\na\n")
    assert "more than once" in problems_of(folder, "test")
    assert str(folder / "extra.txt") in problems_of(folder, "extra")
    (folder / "parts.json").write_text("{not json")
    assert str(folder / "parts.json") in problems_of(folder)
    other = make_folder(tmp_path / "noparts", parts=False)
    assert "parts/" in problems_of(other, require_parts=True)
    assert PartFolderDataset(other).load(0).part_labels is None
    (other / "masks").rename(other / "masks_old")
    assert "masks/" in problems_of(other)


def test_unknown_dataset_kind(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset kind 'foo'.*folder"):
        open_dataset("foo:bar")


def test_validation_can_be_skipped_but_load_still_checks(folder):
    Image.fromarray(mask_array(10, 10)).save(folder / "masks" / "b.png")
    ds = PartFolderDataset(folder, "train", validate=False)
    ds.load(0)
    with pytest.raises(DatasetError, match="b.png"):
        ds.load(1)


# ----------------------------------------------------------------------------------- conversions
def save(tmp_path: Path, image: Image.Image, name: str, **kwargs) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_grayscale_becomes_rgb(tmp_path):
    arr = (np.arange(H * W).reshape(H, W) % 256).astype(np.uint8)
    out = read_image(save(tmp_path, Image.fromarray(arr), "g.png"))
    assert out.mode == "RGB" and out.size == (W, H)
    rgb = np.asarray(out)
    assert np.array_equal(rgb[..., 0], arr) and np.array_equal(rgb[..., 2], arr)


def test_rgba_is_composited_on_black(tmp_path):
    arr = np.zeros((H, W, 4), dtype=np.uint8)
    arr[..., :3] = (250, 120, 10)
    arr[:, : W // 2, 3] = 255  # left half opaque, right half transparent
    out = np.asarray(read_image(save(tmp_path, Image.fromarray(arr, "RGBA"), "a.png")))
    assert out.shape == (H, W, 3)
    assert tuple(out[0, 0]) == (250, 120, 10) and tuple(out[0, -1]) == (0, 0, 0)


def test_16_bit_is_rescaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535, 1000]] * 3, dtype=np.uint16)
    out = np.asarray(read_image(save(tmp_path, Image.fromarray(arr), "d.png")))
    assert out.shape == (3, 4, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255, 4]


def test_palette_uses_its_colours(tmp_path):
    im = Image.new("P", (W, H), 1)
    im.putpalette([0, 0, 0, 12, 34, 56] + [0] * (254 * 3))
    im.putpixel((0, 0), 0)
    out = np.asarray(read_image(save(tmp_path, im, "p.png")))
    assert tuple(out[1, 1]) == (12, 34, 56) and tuple(out[0, 0]) == (0, 0, 0)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    out = read_image(save(tmp_path, Image.new("CMYK", (W, H), (0, 255, 255, 0)), "c.jpg"))
    assert out.mode == "RGB" and out.size == (W, H)
    assert np.abs(np.asarray(out)[H // 2, W // 2].astype(int) - (255, 0, 0)).max() <= 8


def exif_rotated(path: Path) -> Path:
    """A 20x14 JPEG whose EXIF orientation 6 says: display rotated 90 degrees clockwise (14x20).
    Its top-left quadrant is red, so the displayed top-right corner must be red."""
    arr = np.zeros((H, W, 3), dtype=np.uint8)
    arr[:] = (0, 0, 255)
    arr[: H // 2, : W // 2] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(path, exif=exif, quality=100)
    return path


def test_exif_orientation_is_applied(tmp_path):
    out = read_image(exif_rotated(tmp_path / "e.jpg"))
    assert out.size == (H, W)  # width and height swapped
    rgb = np.asarray(out).astype(int)
    assert np.abs(rgb[1, -2] - (255, 0, 0)).max() < 40  # top-right: the raw top-left
    assert np.abs(rgb[-2, 1] - (0, 0, 255)).max() < 40


def test_exif_rotated_image_in_a_part_folder(tmp_path):
    root = make_folder(tmp_path / "ds", ids=("a",), parts=False)
    (root / "images" / "a.png").unlink()
    exif_rotated(root / "images" / "a.jpg")
    Image.fromarray(mask_array(W, H)).save(root / "masks" / "a.png")  # the displayed orientation: 14 x 20
    sample = PartFolderDataset(root, "train").load(0)
    assert sample.image.size == (H, W) and sample.fg_mask.shape == (W, H)


def test_masks_in_other_modes(tmp_path):
    m = mask_array() > 0
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m.astype(np.uint8)), "01.png")), m)
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m), "bits.png")), m)
    rgb = Image.fromarray(np.repeat(mask_array()[..., None], 3, axis=2))
    assert np.array_equal(read_mask(save(tmp_path, rgb, "rgb.png")), m)
    wide = Image.fromarray(m.astype(np.uint16) * 65535)
    assert np.array_equal(read_mask(save(tmp_path, wide, "m16.png")), m)


def test_16_bit_mask_with_values_0_and_1(tmp_path):
    m = mask_array() > 0
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m.astype(np.uint16)), "m01.png")), m)


def test_read_labels_refuses_colour_pngs(tmp_path):
    with pytest.raises(DatasetError, match="single-channel"):
        read_labels(save(tmp_path, rgb_image(), "l.png"))
    labels = np.array([[0, 3], [7, 1]], dtype=np.uint8)
    assert read_labels(save(tmp_path, Image.fromarray(labels), "ok.png")).tolist() == [[0, 3], [7, 1]]


def test_image_folder_dataset(tmp_path, folder):
    ds = ImageFolderDataset(folder / "images")
    assert ds.ids == ["a", "b", "c"]
    s = ds.load(0)
    assert s.fg_mask.all() and not s.mask_given
    with_masks = ImageFolderDataset(folder / "images", folder / "masks").load(1)
    assert with_masks.mask_given and with_masks.fg_mask.sum() == (H - 4) * (W - 6)
    with pytest.raises(DatasetError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")


@pytest.mark.parametrize("name", ["ccp", "pascal_person"])
def test_shared_datasets_are_part_folders(shared_data, name):
    root = shared_data / name
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    ds = PartFolderDataset(root, "test", validate=False, require_parts=True)
    assert len(ds) > 0 and ds.num_part_classes > 0
    for index in (0, len(ds) - 1):
        sample = ds.load(index)
        assert sample.image.mode == "RGB" and max(sample.image.size) == 256
        assert sample.fg_mask.shape == sample.part_labels.shape == (sample.image.height, sample.image.width)
        assert sample.fg_mask.any()
        assert np.array_equal(sample.part_labels > 0, sample.fg_mask)  # parts == 0 exactly where mask == 0
        assert sample.part_labels.max() <= max(ds.part_names)


def test_huge_image_is_refused_with_its_name(tmp_path, monkeypatch):
    import partdiscovery.data.image_io as image_io

    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)  # stand-in for a 100-megapixel photo
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(path)
    with pytest.raises(DatasetError, match=r"big\.png.*400 pixels|big\.png.*20x20"):
        image_io.read_image(path)


def test_validation_split_is_a_hashed_share_of_train_held_out_of_training(tmp_path):
    ids = [f"{i:04d}" for i in range(50)]
    val = validation_ids(ids)
    assert 5 <= len(val) <= 15 and set(val) < set(ids)
    # Adding images never moves an old one between train and validation, whatever the file order.
    more = validation_ids(list(reversed(ids)) + [f"new{i}" for i in range(20)])
    assert set(val) <= set(more) and not (set(more) - set(val)) & set(ids)
    assert validation_ids(["a", "b"]) in (["a"], ["b"]) and validation_ids(["a"]) == []

    root = make_folder(tmp_path / "ds")
    val_ds, rest = PartFolderDataset(root, "val"), PartFolderDataset(root, HOLDOUT_SPLIT)
    assert sorted(val_ds.ids + rest.ids) == ["a", "b", "c"] and val_ds.ids and rest.ids
    (root / "val.txt").write_text("c\n")  # an explicit val.txt wins
    assert PartFolderDataset(root, "val").ids == ["c"]
    assert PartFolderDataset(root, HOLDOUT_SPLIT).ids == ["a", "b"]


# --------------------------------------------------------------------------- silent guesses are refused
def test_split_file_with_a_byte_order_mark(folder):
    """Windows editors start UTF-8 files with a BOM; it must not become part of the first id."""
    (folder / "train.txt").write_bytes("\ufeffa\r\nb\r\nc\r\n".encode())
    assert PartFolderDataset(folder, "train").ids == ["a", "b", "c"]


def test_an_image_id_with_two_files_is_ambiguous(folder):
    rgb_image((0, 0, 255)).save(folder / "images" / "b.jpg")  # b.png exists too
    message = problems_of(folder)
    assert "ambiguous" in message and "b.png" in message and "b.jpg" in message
    with pytest.raises(DatasetError, match="ambiguous"):
        PartFolderDataset(folder, "train", validate=False)
    with pytest.raises(DatasetError, match="ambiguous"):
        PartFolderDataset(folder, "all")


def test_upper_case_extension_is_found(folder):
    (folder / "images" / "a.png").rename(folder / "images" / "a.PNG")
    ds = PartFolderDataset(folder, "train")
    assert ds.load(0).image.size == (W, H)


def test_part_labels_missing_from_parts_json_are_warned_about(folder):
    labels = read_labels(folder / "parts" / "b.png")
    labels[labels == 2] = 7
    Image.fromarray(labels.astype(np.uint8)).save(folder / "parts" / "b.png")
    with pytest.warns(UserWarning, match=r"also use 7 \(first in .*b\.png\)"):
        PartFolderDataset(folder, "train")


def test_image_folder_refuses_two_files_with_one_stem(tmp_path):
    rgb_image().save(tmp_path / "x.png")
    rgb_image().save(tmp_path / "x.jpg")
    with pytest.raises(DatasetError, match="ambiguous.*x.jpg, x.png"):
        ImageFolderDataset(tmp_path)


def test_parts_json_with_a_byte_order_mark(folder):
    (folder / "parts.json").write_bytes('\ufeff{"names": {"1": "left", "2": "right"}}'.encode())
    assert PartFolderDataset(folder, "train").part_names == {1: "left", 2: "right"}


def test_masks_from_another_folder_and_split_image_paths(tmp_path, folder):
    from partdiscovery.data.part_folder import split_image_paths

    (folder / "masks").rename(tmp_path / "elsewhere")
    assert "computes masks" in problems_of(folder)
    dataset = PartFolderDataset(folder, masks=tmp_path / "elsewhere")
    assert dataset.load(0).fg_mask.any()
    assert "mask folder does not exist" in problems_of(folder, masks=tmp_path / "nowhere")
    paths = split_image_paths(folder, "train")
    assert [p.stem for p in paths] == dataset.ids and all(p.is_file() for p in paths)
    paths[0].unlink()
    with pytest.raises(DatasetError, match="image is missing"):
        split_image_paths(folder, "train")
