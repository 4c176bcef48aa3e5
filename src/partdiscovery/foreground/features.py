"""φ features of one image at its own aspect ratio, the input of the foreground clustering.

Why not the training transforms: those letterbox into a square, and the padding would become a
"background" every image shares on its border, which is exactly the cue the clustering must learn
from the photographs themselves.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

FEATURE_MULTIPLE = 16
"""φ's coarsest layer has stride 16: input sides are rounded to a multiple of it."""


def feature_input_size(width: int, height: int, input_size: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the longer side is ``input_size``, each rounded to a multiple of 16."""
    scale = input_size / max(width, height)
    return tuple(
        max(FEATURE_MULTIPLE, round(s * scale / FEATURE_MULTIPLE) * FEATURE_MULTIPLE) for s in (width, height)
    )


def image_features(
    phi: nn.Module, image: Image.Image, input_size: int, device: torch.device | str = "cpu", pad: int = 32
) -> np.ndarray:
    """Dense φ features of ``image``: ``float32 [h, w, C]`` at φ's finest stride (8 for EfficientNet-Lite0).

    The image is reflect-padded by ``pad`` pixels (a multiple of 16) before φ and the padding's cells
    are cropped off again. Why: with φ's zero padding, cells on the image border get features that say
    "border" whatever they show, and the clustering would learn that instead of what the border shows.
    NumPy pads, not torch: its reflection repeats where ``pad`` exceeds a side, so a panorama whose
    short side rounds to 16 pixels is padded like any other image (torch's reflect mode refuses it).

    Args:
        phi: a :class:`~partdiscovery.models.DenseFeatures` (frozen; per-layer L2-normalised features).
        image: RGB image of any size.
        input_size: longer side of φ's input in pixels (before padding).
    """
    size = feature_input_size(image.width, image.height, input_size)
    rgb = np.asarray(image.convert("RGB").resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    if pad:
        rgb = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    batch = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device)
    features = phi(batch)[0]
    if pad:
        cells = pad * features.shape[-1] // batch.shape[-1]
        features = features[:, cells:-cells, cells:-cells]
    return features.permute(1, 2, 0).float().cpu().numpy()


def border_cells(height: int, width: int, width_cells: int = 1) -> np.ndarray:
    """``bool [height, width]``: True on the outermost ``width_cells`` rows and columns."""
    border = np.zeros((height, width), dtype=bool)
    border[:width_cells], border[-width_cells:] = True, True
    border[:, :width_cells], border[:, -width_cells:] = True, True
    return border
