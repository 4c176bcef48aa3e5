"""Pictures of the parts: a fixed colour-blind-safe palette and overlays.

Part k always has the same colour in every image and every run (Okabe & Ito's eight colours, then
Paul Tol's muted scheme), so figures can be compared side by side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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
