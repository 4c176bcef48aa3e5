"""Robust image, mask and label reading: every failure names the file and what to do about it.

Conventions: images come back as RGB ``PIL.Image`` (EXIF orientation applied; grayscale, RGBA,
palette, CMYK and 16-bit images converted), masks as ``bool`` arrays ``[H, W]`` and part labels as
``int64`` arrays ``[H, W]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from partdiscovery.errors import DatasetError

MAX_PIXELS = 100_000_000
"""Larger images are refused (a decompression bomb or a mistake); resize them first."""


def _open(path: Path, what: str) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: {what} file is missing")
    if path.stat().st_size == 0:
        raise DatasetError(
            f"{path}: {what} file is empty (0 bytes); replace it or remove its id from the split"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise DatasetError(
                    f"{path}: {what} is {img.width}x{img.height} pixels, more than {MAX_PIXELS:,}; resize it first"
                )
            img.load()
    except DatasetError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as e:
        raise DatasetError(
            f"{path}: cannot read {what} ({type(e).__name__}: {e}); is the file truncated or not an image?"
        ) from None
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit single-channel images are rescaled to 0..255 (not clipped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L")
    return img


def read_image(path: str | Path) -> Image.Image:
    """Read any image as RGB, with EXIF orientation applied."""
    img = _open(Path(path), "image")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        pass
    img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def read_mask(path: str | Path) -> np.ndarray:
    """Read a binary foreground mask (0/255 or 0/1, any mode) as ``bool [H, W]``.

    Raises :class:`DatasetError` for values other than two levels {0, x}.
    """
    path = Path(path)
    img = _open(path, "mask")
    # Judge the raw values: rescaling a 16-bit 0/1 mask to 8 bits would turn 1 into 0.
    if img.mode not in ("L", "1", "P", "I;16", "I;16B", "I;16L", "I", "F"):
        img = img.convert("L")
    arr = np.asarray(img)
    values = np.unique(arr)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise DatasetError(f"{path}: mask is not binary (values {shown}); masks must hold only 0 and 255")
    return arr > 0


def read_labels(path: str | Path) -> np.ndarray:
    """Read a part-label PNG (mode L or P, 0 = background) as ``int64 [H, W]``."""
    path = Path(path)
    img = _open(path, "part labels")
    if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
        raise DatasetError(f"{path}: part labels must be a single-channel PNG (mode L), got mode {img.mode}")
    return np.asarray(img).astype(np.int64)
