"""The palette and the pictures of the parts: colours, overlays (the report's), filled and outlined parts
with a legend (predict's), grids and label PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from partdiscovery.viz import (
    PALETTE,
    colourise,
    draw_parts,
    grid,
    label_image,
    legend,
    overlay,
    part_colour,
    part_name,
    parts_figure,
)
from partdiscovery.viz.overlay import BACKGROUND


def photo_and_parts(size: int = 40) -> tuple[Image.Image, np.ndarray]:
    rgb = np.full((size, size, 3), 128, np.uint8)
    parts = np.zeros((size, size), np.int64)
    parts[5:20, 5:35] = 1
    parts[20:35, 5:35] = 2
    return Image.fromarray(rgb), parts


def test_draw_parts_keeps_the_background_and_outlines_each_part():
    image, parts = photo_and_parts()
    drawn = np.asarray(draw_parts(image, parts))
    assert (drawn[parts == 0] == 128).all()  # the photo, untouched (overlay() darkens it)
    assert (np.asarray(overlay(image, parts))[parts == 0] < 128).all()
    # Outlines in the part's own colour at full strength; interiors a blend of photo and colour.
    assert tuple(drawn[5, 10]) == part_colour(1) and tuple(drawn[34, 10]) == part_colour(2)
    interior = drawn[12, 20].astype(int)
    assert tuple(interior) != part_colour(1) and np.abs(interior - np.array(part_colour(1))).max() < 80


def test_legend_and_figure():
    image, parts = photo_and_parts()
    key = legend(6, 60)
    assert key.width == 60 and key.height > 16  # six entries wrap onto several rows
    figure = parts_figure(image, parts, 4, names={1: "head"})
    assert figure.width == 40 and figure.height > 40
    top = np.asarray(figure)[:40]
    np.testing.assert_array_equal(top, np.asarray(draw_parts(image, parts)))
    swatch = np.asarray(figure)[40:]
    assert (swatch == np.array(part_colour(1))).all(-1).any()  # the legend shows part 1's colour


def test_part_colour_is_fixed_and_wraps_around_the_palette():
    assert part_colour(0) == part_colour(-3) == BACKGROUND
    assert part_colour(1) == PALETTE[0] and part_colour(len(PALETTE)) == PALETTE[-1]
    assert part_colour(len(PALETTE) + 2) == PALETTE[1]
    assert len(set(PALETTE)) == len(PALETTE) and BACKGROUND not in PALETTE


def test_colourise_maps_each_label_to_its_colour():
    parts = np.array([[0, 1, 2], [3, -1, 19]])
    colours = colourise(parts)
    assert colours.shape == (2, 3, 3) and colours.dtype == np.uint8
    for (r, c), label in np.ndenumerate(parts):
        assert tuple(colours[r, c]) == part_colour(label), (r, c)
    assert colourise(np.zeros((2, 2), np.int64)).max() == 0  # background only


def test_overlay_blends_the_parts_and_darkens_the_background():
    image, parts = photo_and_parts()
    for alpha in (0.55, 0.2):
        out = np.asarray(overlay(image, parts, alpha=alpha)).astype(int)
        expected = np.round((1 - alpha) * 128 + alpha * np.array(part_colour(2)))
        np.testing.assert_allclose(out[30, 20], expected, atol=1)
        assert (out[parts == 0] == round(0.6 * 128)).all()
    assert overlay(image, parts).size == image.size


def test_draw_parts_outline_thickness():
    image, parts = photo_and_parts()
    thin = np.asarray(draw_parts(image, parts, thickness=1))
    thick = np.asarray(draw_parts(image, parts, thickness=3))
    column = 20  # part 1 spans rows 5..19: its outline is rows 5 (top) and 19 (bottom) when thin
    thin_rows = np.flatnonzero((thin[5:20, column] == part_colour(1)).all(-1)) + 5
    thick_rows = np.flatnonzero((thick[5:20, column] == part_colour(1)).all(-1)) + 5
    assert thin_rows.tolist() == [5, 19]
    assert thick_rows.tolist() == [5, 6, 7, 17, 18, 19]  # thickened inwards only
    assert (thick[parts == 0] == 128).all()
    # By default about 1/200 of the longer side: 2 pixels on a 400-pixel photo (the cases above name a thickness).
    large = np.asarray(draw_parts(*photo_and_parts(400)))
    assert (np.flatnonzero((large[5:20, column] == part_colour(1)).all(-1)) + 5).tolist() == [5, 6, 18, 19]


def test_legend_shows_the_names_on_one_row_when_wide_enough():
    key = legend(2, 300, names={1: "head"})
    assert key.size == (300, 16 + 4)
    assert not np.array_equal(np.asarray(key), np.asarray(legend(2, 300)))  # "head" drawn, not "part 1"
    assert (np.asarray(key) == np.array(part_colour(2))).all(-1).any()


def test_the_legend_grows_with_the_photo():
    """On a 4000-pixel photo the key is five times a small photo's, so it stays readable at a glance."""
    small = parts_figure(Image.new("RGB", (400, 300), (128, 128, 128)), np.ones((300, 400), np.int64), 4)
    large = parts_figure(Image.new("RGB", (4000, 3000), (128, 128, 128)), np.ones((3000, 4000), np.int64), 4)
    assert small.height - 300 == 16 + 4  # one row of four entries
    assert large.height - 3000 == 5 * (16 + 4)
    assert legend(4, 4000, scale=5).size == (4000, 5 * (16 + 4))


def test_grid_tiles_shrinks_and_centres_each_image():
    wide = Image.new("RGB", (256, 128), (255, 0, 0))
    small = Image.new("RGB", (10, 10), (0, 0, 255))
    tiled = grid([[wide, small], [small]], cell=128, pad=2)
    assert tiled.size == (2 * 130 + 2, 2 * 130 + 2)
    pixels = np.asarray(tiled)
    red = np.argwhere((pixels == (255, 0, 0)).all(-1))
    assert red.min(0).tolist() == [2 + 32, 2] and red.max(0).tolist() == [2 + 32 + 63, 2 + 127]
    blue = np.argwhere((pixels[:130, 130:] == (0, 0, 255)).all(-1))
    assert blue.min(0).tolist() == [2 + 59, 2 + 59] and len(blue) == 100  # not enlarged
    assert (pixels[130:, 130:] == 255).all()  # the missing cell stays white
    assert wide.size == (256, 128)  # the caller's image is not resized in place


def test_label_image_is_a_mode_l_png_of_the_labels():
    parts = np.array([[0, 1], [2, 255]])
    image = label_image(parts)
    assert image.mode == "L" and np.asarray(image).tolist() == parts.tolist()
    for bad in (np.array([[256]]), np.array([[-1]])):
        with pytest.raises(ValueError, match="0..255"):
            label_image(bad)


def test_a_part_without_a_name_is_called_part_k():
    assert part_name(2, {1: "head", 2: "tail"}) == "tail"
    assert part_name(3, {1: "head"}) == part_name(3) == "part 3"
