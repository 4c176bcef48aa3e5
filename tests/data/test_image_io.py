"""Robust image, mask and label reading (partdiscovery.data.image_io): odd images are converted, every bad
file is a DatasetError naming it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from PIL import Image

from partdiscovery.data.image_io import read_image, read_labels, read_mask
from partdiscovery.errors import DatasetError
from tests.data.dataset_builders import FAST, exif_rotated, file_bytes, mask_array, rgb_image
from tests.data.dataset_builders import FOLDER_HEIGHT as H
from tests.data.dataset_builders import FOLDER_WIDTH as W


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


def test_exif_orientation_is_applied(tmp_path):
    out = read_image(exif_rotated(tmp_path / "e.jpg"))
    assert out.size == (H, W)  # width and height swapped
    rgb = np.asarray(out).astype(int)
    assert np.abs(rgb[1, -2] - (255, 0, 0)).max() < 40  # top-right: the raw top-left
    assert np.abs(rgb[-2, 1] - (0, 0, 255)).max() < 40


def test_masks_in_other_modes(tmp_path):
    m = mask_array() > 0
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m.astype(np.uint8)), "01.png")), m)
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m), "bits.png")), m)
    rgb = Image.fromarray(np.repeat(mask_array()[..., None], 3, axis=2))
    assert np.array_equal(read_mask(save(tmp_path, rgb, "rgb.png")), m)
    wide = Image.fromarray(m.astype(np.uint16) * 65535)
    assert np.array_equal(read_mask(save(tmp_path, wide, "m16.png")), m)
    # Two levels without a 0 are refused too (else every pixel would be object); a third level is tested elsewhere.
    with pytest.raises(DatasetError, match="not binary"):
        read_mask(save(tmp_path, Image.fromarray(np.where(m, 255, 1).astype(np.uint8)), "1_255.png"))


def test_16_bit_mask_with_values_0_and_1(tmp_path):
    m = mask_array() > 0
    assert np.array_equal(read_mask(save(tmp_path, Image.fromarray(m.astype(np.uint16)), "m01.png")), m)


def test_read_labels_refuses_colour_pngs(tmp_path):
    with pytest.raises(DatasetError, match="single-channel"):
        read_labels(save(tmp_path, rgb_image(), "l.png"))
    labels = np.array([[0, 3], [7, 1]], dtype=np.uint8)
    assert read_labels(save(tmp_path, Image.fromarray(labels), "ok.png")).tolist() == [[0, 3], [7, 1]]


def test_huge_image_is_refused_with_its_name(tmp_path, monkeypatch):
    import partdiscovery.data.image_io as image_io

    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)  # stand-in for a 100-megapixel photo
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(path)
    with pytest.raises(DatasetError, match=r"big\.png.*400 pixels|big\.png.*20x20"):
        image_io.read_image(path)


@FAST
@given(data=file_bytes())
def test_readers_return_valid_output_or_a_dataset_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        path.write_bytes(data)
        for reader in (read_image, read_mask, read_labels):
            try:
                out = reader(path)
            except DatasetError as e:
                assert str(path) in str(e)
                continue
            if reader is read_image:
                assert out.mode == "RGB" and out.width > 0 and out.height > 0
            elif reader is read_mask:
                assert out.dtype == bool and out.ndim == 2
            else:
                assert out.dtype == np.int64 and out.ndim == 2


def test_float_images_in_zero_one_are_scaled_like_those_in_0_255(tmp_path):
    """A float TIFF in [0, 1] (the usual range of float images) was divided by 255 as if it were 0..255: black."""
    unit = np.array([[0.0, 0.5, 1.0, 0.25]] * 3, dtype=np.float32)
    low = np.asarray(read_image(save(tmp_path, Image.fromarray(unit, "F"), "unit.tiff")))
    high = np.asarray(read_image(save(tmp_path, Image.fromarray(unit * 255, "F"), "wide.tiff")))
    assert low[0, :, 0].tolist() == high[0, :, 0].tolist() == [0, 128, 255, 64]
