"""Maps computed once per training image, then cropped like the image: φ's features (``loss.cache_features``)
and self-training's target parts (``train.self_train_steps``).

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

    batch_key = "features"
    """The batch entry that holds a crop's features."""
    crop_size: int | None = None
    """None: crops at the size the loader asks for (the loss resolution)."""

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


class PartLabelCache:
    """``index -> [1, H, W]`` uint8 part labels of the (in-memory, shrunk) training image, computed on first use,
    cropped with the image's box by nearest neighbour: self-training's targets
    (:mod:`partdiscovery.losses.self_training`).

    Args:
        labeller: ``(image [1, 3, H, W] in [0, 1], mask [1, 1, H, W] in {0, 1}) -> [1, H, W]`` part index per pixel
            (e.g. a frozen f's refined parts); run without gradients.
        crop_size: the side of a crop (f's input size: the targets are at f's resolution, not the losses').
    """

    batch_key = "part_targets"
    """The batch entry that holds a crop's targets."""
    needs_mask = True
    """:meth:`crop` takes the image's foreground mask (the labeller's input)."""

    def __init__(
        self, labeller: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], crop_size: int
    ) -> None:
        self.labeller = labeller
        self.crop_size: int | None = crop_size
        self._maps: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._maps)

    def crop(
        self,
        index: int,
        image: torch.Tensor,
        box: Box,
        size: tuple[int, int],
        flip: bool = False,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[1, *size]`` uint8 labels of ``box`` of image ``index`` (``image`` ``uint8 [3, H, W]`` and ``mask``
        ``uint8 [1, H, W]``, 0 / 255, used the first time only); 0 where the box leaves the image."""
        if index not in self._maps:
            if mask is None:
                raise ValueError("the first crop of an image needs its mask")
            with torch.no_grad():
                labels = self.labeller(image[None].float() / 255.0, (mask[None] > 127).float())
            self._maps[index] = labels.to("cpu", torch.uint8)
        if size[0] != size[1]:
            raise ValueError(f"crops are square, got {size}")
        out = crop_resize(self._maps[index], box, size[0], mode="nearest")
        return out.flip(-1) if flip else out
