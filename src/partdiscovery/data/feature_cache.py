"""φ features computed once per training image, then cropped like the image (``loss.cache_features``).

φ is frozen, so its features of an image never change during training. Instead of running φ on every
training crop at every step, :class:`FeatureCache` runs it once on the whole letterboxed image (the
square that holds it, see :func:`~partdiscovery.data.transforms.letterbox_box`) and keeps the map in
memory (float16); a training crop then takes its features from that map with
``torchvision.ops.roi_align`` over the same box, flipped with the image. A larger φ then costs nothing
per step.

The cropped features are not exactly φ of the crop: φ saw more context around the crop, at a slightly
different scale (the letterboxed image at ``side`` pixels instead of the crop at the input size).
``benchmarks/feature_cache.py`` measures how far apart the two are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.ops import roi_align

from partdiscovery.data.transforms import Box, crop_resize, letterbox_box


def crop_cached_features(
    features: torch.Tensor,
    letterbox: Box,
    box: Box,
    size: tuple[int, int],
    flip: bool = False,
) -> torch.Tensor:
    """Features of ``box`` from the feature map of the letterboxed image.

    Args:
        features: ``[C, h, w]`` φ of the image's letterbox square ``letterbox`` (any resolution).
        letterbox: the square ``(x0, y0, x1, y1)`` that ``features`` covers, in image pixels.
        box: the crop, in the same image pixels (may extend beyond the letterbox: zeros there).
        size: ``(H, W)`` of the output, e.g. the loss resolution.
        flip: flip the result horizontally (the crop was flipped).

    Returns:
        ``[C, H, W]`` float32: bilinear samples of ``features`` at the centres of an ``H x W`` grid
        over ``box`` (``aligned=True``: the pixel-centre convention of ``align_corners=False``).
    """
    scale = features.shape[-1] / (letterbox[2] - letterbox[0])
    rois = torch.tensor(
        [[0.0, box[0] - letterbox[0], box[1] - letterbox[1], box[2] - letterbox[0], box[3] - letterbox[1]]],
        dtype=torch.float32,
    )
    out = roi_align(features[None].float(), rois, size, spatial_scale=scale, sampling_ratio=1, aligned=True)[
        0
    ]
    return out.flip(-1) if flip else out


class FeatureCache:
    """``index -> [C, h, w]`` float16 φ features of the letterboxed image, computed on first use.

    Args:
        phi: ``images [B, 3, S, S] in [0, 1] -> [B, C, h, w]`` (a frozen feature extractor).
        side: φ's input side ``S`` for the letterboxed image.
        device: where φ runs; the maps are kept in CPU memory.
    """

    def __init__(
        self, phi: Callable[[torch.Tensor], torch.Tensor], side: int, device: torch.device | str = "cpu"
    ) -> None:
        self.phi = phi
        self.side = side
        self.device = torch.device(device)
        self._maps: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._maps)

    def get(self, index: int, image: torch.Tensor) -> tuple[torch.Tensor, Box]:
        """The map of image ``index`` (``image``: ``uint8 [3, H, W]``, used the first time only) and the
        letterbox square it covers."""
        h, w = image.shape[-2:]
        letterbox = letterbox_box(w, h)
        if index not in self._maps:
            square = crop_resize(image, letterbox, self.side) / 255.0
            with torch.no_grad():
                self._maps[index] = self.phi(square[None].to(self.device))[0].to("cpu", torch.float16)
        return self._maps[index], letterbox

    def crop(
        self, index: int, image: torch.Tensor, box: Box, size: tuple[int, int], flip: bool = False
    ) -> torch.Tensor:
        """``[C, *size]`` features of ``box`` of image ``index`` (:func:`crop_cached_features`)."""
        fmap, letterbox = self.get(index, image)
        return crop_cached_features(fmap, letterbox, box, size, flip)
