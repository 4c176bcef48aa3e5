"""Pictures of the parts: a fixed colour-blind-safe palette and overlays.

Part k always has the same colour in every image and every run (Okabe & Ito's eight colours, then
Paul Tol's muted scheme), so figures can be compared side by side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.segmentation import find_boundaries

# Okabe-Ito (2008) without black, then Tol's muted palette: distinguishable with common colour blindness.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (136, 34, 85),
    (68, 170, 153),
    (153, 153, 51),
    (204, 102, 119),
    (51, 34, 136),
    (17, 119, 51),
    (136, 204, 238),
    (221, 204, 119),
    (170, 68, 153),
    (221, 221, 221),
)
BACKGROUND = (0, 0, 0)


def part_colour(part: int) -> tuple[int, int, int]:
    """Colour of part ``part`` (1-based); 0 is the background."""
    return BACKGROUND if part <= 0 else PALETTE[(part - 1) % len(PALETTE)]


def colourise(parts: np.ndarray) -> np.ndarray:
    """``int [H, W]`` labels -> ``uint8 [H, W, 3]`` colours."""
    lut = np.array(
        [BACKGROUND] + [part_colour(k) for k in range(1, int(parts.max(initial=0)) + 1)], dtype=np.uint8
    )
    return lut[np.clip(parts, 0, None)]


def overlay(image: Image.Image, parts: np.ndarray, alpha: float = 0.55) -> Image.Image:
    """Blend part colours over ``image``; the background keeps the (darkened) photo."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = colourise(parts).astype(np.float32)
    fg = (parts > 0)[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * colours, 0.6 * rgb)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def draw_parts(
    image: Image.Image, parts: np.ndarray, alpha: float = 0.5, thickness: int | None = None
) -> Image.Image:
    """Parts drawn to be seen at a glance: each part filled with its palette colour, its outline drawn
    in that colour at full strength, the background left as the photo.

    Why not :func:`overlay`: it darkens the background and tints the parts, fine for side-by-side grids
    but faint on a user's own photographs. Outlines come from scikit-image ``find_boundaries``.

    Args:
        image: the photograph, ``W x H``.
        parts: ``int [H, W]``, 0 = background, 1..K.
        alpha: opacity of the part fill.
        thickness: outline width in pixels (default: about 1/200 of the longer side, at least 1).

    Returns:
        RGB image ``W x H``.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    colours = colourise(parts).astype(np.float32)
    fg = (parts > 0)[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * colours, rgb)
    edges = find_boundaries(parts, mode="inner") & (parts > 0)
    thickness = thickness or max(1, round(max(parts.shape) / 200))
    if thickness > 1:
        from scipy.ndimage import binary_dilation

        # Thicken inwards only, so each outline keeps the colour of the part it belongs to.
        edges = binary_dilation(edges, iterations=thickness - 1) & (parts > 0)
    out[edges] = colours[edges]
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


LEGEND_SCALE_SIDE = 800
"""A figure's legend grows by one step per this many pixels of the photo's longer side (see :func:`parts_figure`)."""


def part_name(k: int, names: dict[int, str] | None = None) -> str:
    """Part ``k``'s name in ``names``, else "part k": the one default of the legends, the report and ``parts.json``."""
    return (names or {}).get(k, f"part {k}")


def legend(num_parts: int, width: int, names: dict[int, str] | None = None, scale: int = 1) -> Image.Image:
    """A strip ``width`` pixels wide with one swatch per part: colour -> "part k" (or its name).

    ``scale`` multiplies the rows, swatches and the font (the default font is 10 px at 1), so that the key is
    as readable on a phone's 4000-pixel photo as on a 200-pixel crop.
    """
    font = ImageFont.load_default(size=10 * scale)
    labels = [part_name(k, names) for k in range(1, num_parts + 1)]
    row_h, swatch, pad = 16 * scale, 12 * scale, 4 * scale
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [swatch + pad + round(measure.textlength(t, font=font)) + 3 * pad for t in labels]
    rows, x = [[]], pad
    for k, w in enumerate(widths, start=1):
        if rows[-1] and x + w > width:
            rows.append([])
            x = pad
        rows[-1].append((k, x))
        x += w
    strip = Image.new("RGB", (width, len(rows) * row_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        y = pad + r * row_h
        for k, x in row:
            draw.rectangle(
                [x, y, x + swatch, y + swatch], fill=part_colour(k), outline=(0, 0, 0), width=scale
            )
            draw.text((x + swatch + pad, y), labels[k - 1], fill=(0, 0, 0), font=font)
    return strip


def parts_figure(
    image: Image.Image, parts: np.ndarray, num_parts: int, names: dict[int, str] | None = None
) -> Image.Image:
    """:func:`draw_parts` of ``image`` with a :func:`legend` of all ``num_parts`` parts below it
    (``predict``'s overlays); the legend scales with the photo (one step per :data:`LEGEND_SCALE_SIDE` pixels of
    its longer side), as the outlines do."""
    drawn = draw_parts(image, parts)
    scale = max(1, round(max(drawn.size) / LEGEND_SCALE_SIDE))
    key = legend(num_parts, drawn.width, names, scale=scale)
    figure = Image.new("RGB", (drawn.width, drawn.height + key.height), (255, 255, 255))
    figure.paste(drawn, (0, 0))
    figure.paste(key, (0, drawn.height))
    return figure


def label_image(parts: np.ndarray) -> Image.Image:
    """Labels as a mode-L PNG image (0 = background, 1..K), the format ``evaluate --predictions`` reads."""
    if parts.max(initial=0) > 255 or parts.min(initial=0) < 0:
        raise ValueError("part labels must lie in 0..255")
    return Image.fromarray(parts.astype(np.uint8), mode="L")


def grid(rows: list[list[Image.Image]], cell: int = 128, pad: int = 2) -> Image.Image:
    """Tile images (each resized to fit ``cell`` x ``cell``) into one picture."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    canvas = Image.new("RGB", (n_cols * (cell + pad) + pad, n_rows * (cell + pad) + pad), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            im = im.copy()
            im.thumbnail((cell, cell))
            canvas.paste(
                im,
                (
                    pad + c * (cell + pad) + (cell - im.width) // 2,
                    pad + r * (cell + pad) + (cell - im.height) // 2,
                ),
            )
    return canvas
