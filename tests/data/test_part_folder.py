"""The part folder format: every bad input is a DatasetError naming the file; odd images are converted."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from PIL import Image

from partdiscovery.data import PartFolderDataset, open_dataset
from partdiscovery.data.image_io import read_image, read_labels
from partdiscovery.data.part_folder import HOLDOUT_SPLIT, ImageFolderDataset, list_images, validation_ids
from partdiscovery.errors import DatasetError
from tests.data.dataset_builders import FAST, exif_rotated, file_bytes, make_folder, mask_array, rgb_image
from tests.data.dataset_builders import FOLDER_HEIGHT as H
from tests.data.dataset_builders import FOLDER_WIDTH as W

# The builder's folder lists its first id in both train.txt and test.txt (one image serves both); opening its training
# split warns about that, which test_ids_of_the_training_split_also_in_test_are_warned_about checks once.
pytestmark = pytest.mark.filterwarnings("ignore:.*are also in test.txt:UserWarning")


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


def test_ids_of_the_training_split_also_in_test_are_warned_about(folder):
    """The fixture lists "a" in both train.txt and test.txt: usable, but test scores would include a training image."""
    with pytest.warns(UserWarning, match=r"1 id\(s\) of the 'train' split are also in test.txt \(e.g. a\)"):
        PartFolderDataset(folder, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PartFolderDataset(folder, "test")


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


def test_a_file_with_two_problems_shows_both(folder):
    mask = mask_array(10, 10)
    mask[5, 5] = 128
    Image.fromarray(mask).save(folder / "masks" / "c.png")
    (folder / "images" / "b.png").write_bytes(b"")  # b's mask and part labels are still checked
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(folder / "parts" / "b.png")
    message = problems_of(folder)
    # c's mask twice, c's part labels against that mask, b's image and labels.
    assert "5 problem(s)" in message
    assert "not binary" in message and f"mask is 10x10 but the image is {W}x{H}" in message
    assert "part labels are 5x5" in message and str(folder / "images" / "b.png") in message
    assert f"{folder / 'parts' / 'c.png'}: part labels are {W}x{H} but the mask is 10x10" in message


def test_a_mask_too_large_to_open_is_a_problem_not_a_traceback(folder, monkeypatch):
    """Pillow refuses images over 2 x MAX_IMAGE_PIXELS with an error of its own (a decompression bomb); the size
    read for a refused mask must not raise it again."""
    big = folder / "masks" / "c.png"
    Image.fromarray(mask_array(300, 200)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 60 000 pixels: over twice the limit
    message = problems_of(folder)
    assert str(big) in message


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


def test_an_id_whose_image_is_of_a_format_not_read_says_so(folder):
    from partdiscovery.data.part_folder import split_image_paths

    image = folder / "images" / "a.png"
    Image.open(image).save(folder / "images" / "a.gif")
    image.unlink()
    hint = "a.gif is of a format not read: convert it to JPEG or PNG"  # one file: "it"
    assert hint in problems_of(folder)
    with pytest.raises(DatasetError, match=hint):  # as `train` lists a maskless folder's images
        split_image_paths(folder, "train")


@pytest.mark.parametrize("bad_id", ["../x", "../../etc/passwd", "/etc/passwd"])
def test_ids_escaping_the_root_are_refused(folder, bad_id):
    Image.new("RGB", (W, H)).save(folder / "x.png")  # exists, but outside images/
    (folder / "train.txt").write_text(f"a\n{bad_id}\n")
    message = problems_of(folder)
    assert bad_id in message and "outside" in message


def test_missing_parts_label_and_parts_size_mismatch(folder):
    (folder / "parts" / "a.png").unlink()
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(folder / "parts" / "b.png")
    message = problems_of(folder, require_parts=True)
    assert str(folder / "parts" / "a.png") in message and str(folder / "parts" / "b.png") in message


def test_images_without_part_labels_train_with_a_warning_and_are_refused_for_scoring(folder):
    """parts/ is for scoring: a user who labelled some images only trains on all of them."""
    (folder / "parts" / "a.png").unlink()
    with pytest.warns(
        UserWarning, match=r"1 image\(s\) of split 'train' have no part labels \(first: a.png\)"
    ):
        ds = PartFolderDataset(folder, "train")
    assert ds.load(0).part_labels is None and ds.load(1).part_labels is not None
    assert "parts/a.png: part labels are missing" in problems_of(folder, require_parts=True)


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
    assert "is a file, not a dataset folder" in problems_of(folder / "train.txt")
    (folder / "test.txt").write_text("# only a comment\n\n")
    assert str(folder / "test.txt") in problems_of(folder, "test")
    (folder / "test.txt").write_text("a\nb\na\nnowhere\n")
    message = problems_of(folder, "test")  # listed with the folder's other problems, not alone
    assert (
        "more than once: a" in message and f"{folder / 'images' / 'nowhere'}.*: image is missing" in message
    )
    assert str(folder / "extra.txt") in problems_of(folder, "extra")
    (folder / "parts.json").write_text("{not json")
    assert str(folder / "parts.json") in problems_of(folder)
    other = make_folder(tmp_path / "noparts", parts=False)
    assert "parts/" in problems_of(other, require_parts=True)
    assert PartFolderDataset(other).load(0).part_labels is None
    (other / "masks").rename(other / "masks_old")
    assert "masks/" in problems_of(other)


def test_validation_can_be_skipped_but_load_still_checks(folder):
    Image.fromarray(mask_array(10, 10)).save(folder / "masks" / "b.png")
    ds = PartFolderDataset(folder, "train", validate=False)
    ds.load(0)
    with pytest.raises(DatasetError, match="b.png"):
        ds.load(1)


# ----------------------------------------------------------------------------------- conversions


def test_exif_rotated_image_in_a_part_folder(tmp_path):
    root = make_folder(tmp_path / "ds", ids=("a",), parts=False)
    (root / "images" / "a.png").unlink()
    exif_rotated(root / "images" / "a.jpg")
    Image.fromarray(mask_array(W, H)).save(root / "masks" / "a.png")  # the displayed orientation: 14 x 20
    sample = PartFolderDataset(root, "train").load(0)
    assert sample.image.size == (H, W) and sample.fg_mask.shape == (W, H)


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


def test_one_image_file_is_a_collection_of_one(folder):
    one = ImageFolderDataset(folder / "images" / "b.png", folder / "masks")
    assert one.ids == ["b"] and one.load(0).mask_given
    with pytest.raises(DatasetError, match=r"train.txt: is not an image of a format read \(.jpg"):
        ImageFolderDataset(folder / "train.txt")


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


def test_validation_split_is_a_hashed_share_of_train_held_out_of_training(tmp_path):
    ids = [f"{i:04d}" for i in range(50)]
    val = validation_ids(ids)
    assert 5 <= len(val) <= 15 and set(val) < set(ids)
    # Adding images never moves an old one between train and validation, whatever the file order.
    more = validation_ids(list(reversed(ids)) + [f"new{i}" for i in range(20)])
    assert set(val) <= set(more) and not (set(more) - set(val)) & set(ids)
    assert validation_ids(["a", "b"]) in (["a"], ["b"]) and validation_ids(["a"]) == []
    # At least one id held out and one left for training, whatever the share ("a" / "b" alone do not test it).
    assert (
        len(validation_ids(ids, fraction=0.0)) == 1 and len(validation_ids(ids, fraction=1.0)) == len(ids) - 1
    )

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
    assert "computes masks" in problems_of(folder)  # parts/ gives the foreground only when asked
    dataset = PartFolderDataset(folder, masks=tmp_path / "elsewhere")
    assert dataset.load(0).fg_mask.any()
    assert "mask folder does not exist" in problems_of(folder, masks=tmp_path / "nowhere")
    paths = split_image_paths(folder, "train")
    assert [p.stem for p in paths] == dataset.ids and all(p.is_file() for p in paths)
    paths[0].unlink()
    with pytest.raises(DatasetError, match=r"image is missing \(listed in train.txt\)"):
        split_image_paths(folder, "train")
    # val and train_minus_val without files of their own name the file their ids come from
    held = [
        split
        for split in ("val", "train_minus_val")
        if paths[0].stem in open_dataset(folder, split, validate=False, masks=tmp_path / "elsewhere").ids
    ]
    assert len(held) == 1  # the missing image is in exactly one of them
    with pytest.raises(DatasetError, match=r"image is missing \(listed in train.txt\)"):
        split_image_paths(folder, held[0])
    assert "(listed in train.txt)" in problems_of(folder, held[0], masks=tmp_path / "elsewhere")


@FAST
@given(image=file_bytes(), mask=file_bytes())
def test_part_folder_gives_samples_or_a_dataset_error(image, mask):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "masks").mkdir()
        (root / "images" / "a.png").write_bytes(image)
        (root / "masks" / "a.png").write_bytes(mask)
        (root / "train.txt").write_text("a\n")
        try:
            sample = PartFolderDataset(root, "train").load(0)
        except DatasetError as e:
            assert str(root) in str(e)
            return
        assert sample.image.size == sample.fg_mask.shape[::-1] and sample.fg_mask.any()


def test_hidden_files_are_not_images(tmp_path, folder):
    """macOS's ``._a.jpg`` companions (not images) are skipped by every listing of a folder's images."""
    (folder / "images" / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert ImageFolderDataset(folder / "images").ids == ["a", "b", "c"]
    assert PartFolderDataset(folder, "all").ids == ["a", "b", "c"]
    assert [p.name for p in list_images(folder / "images")] == ["a.png", "b.png", "c.png"]


def test_pictures_of_another_format_are_named_not_skipped_unsaid(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in (
        "IMG_1.CR2",
        "IMG_2.cr2",
        "notes.txt",
        "receipt.pdf",
    ):  # a camera's RAW files, a note, a document
        (photos / name).write_bytes(b"")
    with pytest.raises(
        DatasetError, match=r"no images found .*2 picture\(s\) of another format \(IMG_1.CR2, IMG_2.cr2\)"
    ):
        list_images(photos)
    rgb_image().save(photos / "a.jpg")
    rgb_image().save(photos / "c.jfif", format="JPEG")  # a JPEG by another name: read
    rgb_image().convert("P").save(photos / "b.gif")
    with pytest.warns(
        UserWarning, match=r"3 picture\(s\) of another format are not used \(IMG_1.CR2, IMG_2.cr2, b.gif\)"
    ):
        assert [p.name for p in list_images(photos)] == ["a.jpg", "c.jfif"]


def test_a_phones_heic_photos_are_read_with_pillow_heif_and_named_without_it(tmp_path):
    """HEIC needs the optional pillow-heif (in the `test` and `heic` extras): read where it is installed, and
    otherwise named with the way to read it."""
    from partdiscovery.data.image_io import HEIF_READ
    from partdiscovery.data.part_folder import IMAGE_EXTENSIONS, OTHER_PICTURE_EXTENSIONS, convert_hint

    assert ("convert it to JPEG or PNG (HEIC: or `pip install pillow-heif`") in convert_hint(
        [Path("IMG_1.HEIC")]
    )
    assert convert_hint([Path("a.gif"), Path("b.gif")]) == "convert them to JPEG or PNG"
    assert (".heic" in IMAGE_EXTENSIONS) == HEIF_READ != (".heic" in OTHER_PICTURE_EXTENSIONS)
    if HEIF_READ:
        rgb_image().save(tmp_path / "IMG_1.HEIC", format="HEIF")
        assert [p.name for p in list_images(tmp_path)] == ["IMG_1.HEIC"]
        assert read_image(tmp_path / "IMG_1.HEIC").size == rgb_image().size


def test_an_image_folder_lists_every_problem_before_anything_is_predicted(tmp_path):
    """``predict`` used to stop at the first bad file, after writing the outputs of the ones before it."""
    from partdiscovery.data.image_io import read_image

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    turned = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6  # shown turned by 90 degrees: the mask has the shown size
    turned.save(images / "turned.jpg", exif=exif.tobytes())
    shown = read_image(images / "turned.jpg").size
    Image.fromarray(np.full(shown[::-1], 255, np.uint8)).save(masks / "turned.png")
    assert ImageFolderDataset(images, masks).ids == ["turned"]
    (images / "text.jpg").write_text("not an image")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "small.png")
    Image.fromarray(np.full((9, 8), 255, np.uint8)).save(masks / "small.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "alone.png")
    with pytest.raises(DatasetError) as info:
        ImageFolderDataset(images, masks)
    message = str(info.value)
    assert "3 image problem(s)" in message
    assert "text.jpg: not a readable image" in message
    assert "small.png: mask size (8, 9) differs from image size (8, 8)" in message
    assert "alone.png: mask file is missing" in message


def test_a_link_to_a_missing_file_is_reported_not_skipped(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / name)
    (images / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert [p.name for p in list_images(images)] == ["a.png", "b.png", "gone.jpg"]
    with pytest.raises(DatasetError, match="gone.jpg: a link to a missing file"):
        ImageFolderDataset(images)


def test_scored_without_masks_the_labelled_parts_are_the_foreground(folder, tmp_path):
    """So that a folder ``train`` made automatic masks for can be scored; never for training or fitting unasked."""
    from partdiscovery.data.part_folder import open_to_score

    shutil.rmtree(folder / "masks")
    assert "missing masks/ folder" in problems_of(folder)
    for ds in (
        open_to_score(folder, "train"),
        open_to_score(f"folder:{folder}", "train", require_parts=True),
    ):
        assert ds.foreground_from_parts
        for index in range(len(ds)):
            sample = ds.load(index)
            assert np.array_equal(sample.fg_mask, sample.part_labels > 0)
    (tmp_path / "given").mkdir()  # given masks win
    for part in (folder / "parts").glob("*.png"):
        Image.fromarray(((read_labels(part) > 0) * 255).astype(np.uint8)).save(tmp_path / "given" / part.name)
    assert not PartFolderDataset(
        folder, masks=tmp_path / "given", foreground_from_parts=True
    ).foreground_from_parts
    Image.fromarray(np.zeros((H, W), np.uint8)).save(folder / "parts" / "b.png")
    assert "parts/b.png: no labelled part pixel, and no masks/" in problems_of(
        folder, foreground_from_parts=True
    )
