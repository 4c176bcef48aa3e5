"""Robust image, mask and label reading: every failure names the file and what to do about it.

Conventions: images come back as RGB ``PIL.Image`` (EXIF orientation applied; grayscale, RGBA,
palette, CMYK and 16-bit images converted), masks as ``bool`` arrays ``[H, W]`` and part labels as
``int64`` arrays ``[H, W]``.

Every dataset module reads its files through these functions (and only these), so a broken file
gives the same kind of message whichever dataset it belongs to.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from partdiscovery.errors import DatasetError


def _read_heif() -> bool:
    """A phone's HEIC / HEIF photos are read where the optional ``pillow-heif`` is installed (the ``heic`` extra,
    ``pip install pillow-heif``): its opener registers the format with Pillow. Without it they are named as pictures
    that are not read (:func:`partdiscovery.data.part_folder.other_pictures`)."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF_READ = _read_heif()
"""Whether HEIC / HEIF files are read (``pillow-heif`` is installed)."""
MAX_PIXELS = 100_000_000
"""Larger images are refused (a decompression bomb or a mistake); resize them first."""
FOREGROUND_THRESHOLD = 0.5 * 255
"""Soft (0..255) mask values >= this are foreground."""


def open_image_file(path: Path, what: str) -> Image.Image:
    """Open and fully decode any image file in its own mode; ``what`` names it in errors (``"segment"``).

    Refuses missing, empty, truncated and over-large (:data:`MAX_PIXELS`) files with a
    :class:`DatasetError` naming the file. Datasets with their own pixel formats (colour-coded segments,
    soft masks) start from this and convert the result themselves.
    """
    path = Path(path)
    if not path.is_file():
        dangling = path.is_symlink() and not path.exists()
        raise DatasetError(
            f"{path}: {what} file is missing" + (" (a link to a missing file)" if dangling else "")
        )
    if path.stat().st_size == 0:
        raise DatasetError(
            f"{path}: {what} file is empty (0 bytes); replace or remove it (in a part folder, with its id in the split)"
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


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit single-channel images rescaled to 0..255: 16-bit from 0..65535; 32-bit integers from
    0..255 when they fit, else 0..65535; floats (mode ``F``) from [0, 1] when they fit (the usual range of float
    images), else 0..255 when they fit, else 0..65535. Values above the range are clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() if arr.size else 0.0
        if img.mode.startswith("I;16") or peak > 255:
            top = 65535.0
        elif img.mode == "F" and peak <= 1.0:
            top = 1.0
        else:
            top = 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L")
    return img


def read_image(path: str | Path) -> Image.Image:
    """Read any image as RGB, with EXIF orientation applied."""
    return to_rgb(oriented(open_image_file(Path(path), "image")))


def oriented(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says (as a photo viewer shows it); unchanged where it has none."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB, the way every image of the package is read: high bit depths rescaled
    (:func:`to_8bit`), transparency composited on black."""
    img = to_8bit(img)
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
    img = open_image_file(path, "mask")
    # Judge the raw values: rescaling a 16-bit 0/1 mask to 8 bits would turn 1 into 0.
    if img.mode not in ("L", "1", "P", "I;16", "I;16B", "I;16L", "I", "F"):
        img = img.convert("L")
    arr = np.asarray(img)
    values = np.unique(arr)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise DatasetError(
            f"{path}: mask is not binary (values {shown}); masks must hold only 0 and 255 (or 0 and 1)"
        )
    return arr > 0


def read_labels(path: str | Path) -> np.ndarray:
    """Read a part-label PNG (mode L or P, 0 = background) as ``int64 [H, W]``."""
    path = Path(path)
    img = open_image_file(path, "part labels")
    if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
        raise DatasetError(f"{path}: part labels must be a single-channel PNG (mode L), got mode {img.mode}")
    return np.asarray(img).astype(np.int64)


def read_soft_mask(
    path: Path, what: str = "segmentation mask", size: tuple[int, int] | None = None
) -> np.ndarray:
    """A soft (0..255) mask as ``bool [H, W]``: value >= 0.5 * 255. ``size`` ``(W, H)``: resize first
    (nearest), as the reference does for masks of another resolution."""
    img = to_8bit(open_image_file(path, what))
    if img.mode != "L":
        img = img.convert("L")
    if size is not None and img.size != size:
        img = img.resize(size, Image.NEAREST)
    return np.asarray(img) >= FOREGROUND_THRESHOLD


def read_predicted_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A user's predicted foreground mask, resized (nearest) to ``size`` ``(W, H)``.

    0/1 masks (the reference's downloadable ``supervisedlabels``, which it multiplies with the
    prediction) are read as they are; 0..255 masks are thresholded at 0.5 * 255.
    """
    img = to_8bit(open_image_file(path, "predicted mask"))
    if img.mode != "L":
        img = img.convert("L")
    if img.size != size:
        img = img.resize(size, Image.NEAREST)
    arr = np.asarray(img)
    return arr > 0 if arr.max(initial=0) <= 1 else arr >= FOREGROUND_THRESHOLD
