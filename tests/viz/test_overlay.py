"""Predict's pictures: parts filled in their palette colour, outlined, the background left as the photo,
and a legend part -> colour."""

from __future__ import annotations

import numpy as np
from PIL import Image

from partdiscovery.viz import draw_parts, legend, overlay, part_colour, parts_figure


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
