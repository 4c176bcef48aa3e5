"""Crops, resizing and the training views, all on tensors.

Convention: a *box* is ``(x0, y0, x1, y1)`` in integer pixel coordinates of the source image, x1/y1
exclusive; it may extend beyond the image (the outside is padded with zeros = black image,
background mask). Cropping a box and resizing it to ``S x S`` is the only geometric operation;
:func:`box_to_grid` is its exact inverse for mapping predictions back to the original image.

Training randomness is a pure function of ``(seed, step, position in batch)``
(:class:`StepBatchSampler`), so DataLoader workers and a resumed run draw the same crops.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, Sampler

from partdiscovery.config import DataConfig
from partdiscovery.data.base import PartDataset, RawSample
from partdiscovery.utils.seed import derive_seed

Box = tuple[int, int, int, int]


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> ``uint8 [3, H, W]``."""
    return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1).contiguous()


def square_box(cx: float, cy: float, side: float) -> Box:
    half = side / 2.0
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    s = max(1, int(round(side)))
    return (x0, y0, x0 + s, y0 + s)


def letterbox_box(width: int, height: int) -> Box:
    """The square box centred on the image that contains all of it (the rest is padding)."""
    return square_box(width / 2.0, height / 2.0, max(width, height))


def crop_resize(image: torch.Tensor, box: Box, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Crop ``box`` from ``image [..., C, H, W]`` (zero padding outside) and resize it to ``[..., C, size, size]``.

    ``mode``: ``bilinear`` (antialiased when shrinking, for images and soft masks) or ``nearest``
    (for label maps; each output pixel takes the label at its centre, PyTorch's ``nearest-exact``, so labels stay
    aligned with the bilinear image). Returns float32 for bilinear, the input dtype for nearest.
    """
    if image.dim() == 4:
        return torch.stack([crop_resize(im, box, size, mode) for im in image])
    _, h, w = image.shape
    x0, y0, x1, y1 = box
    pad = (max(0, -x0), max(0, x1 - w), max(0, -y0), max(0, y1 - h))
    if any(pad):
        image = F.pad(image, pad)
        x0, x1, y0, y1 = x0 + pad[0], x1 + pad[0], y0 + pad[2], y1 + pad[2]
    patch = image[:, y0:y1, x0:x1]
    if mode == "nearest":
        return F.interpolate(patch[None].float(), size=(size, size), mode="nearest-exact")[0].to(image.dtype)
    patch = patch[None].float()
    antialias = patch.shape[-1] > size or patch.shape[-2] > size
    return F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)[
        0
    ]


def box_to_grid(box: Box, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Sampling grid ``[1, height, width, 2]`` that maps a prediction made on ``box`` (resized to any
    square) back onto the ``height x width`` source image, for ``F.grid_sample(align_corners=False)``."""
    x0, y0, x1, y1 = box
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5 - x0) / (x1 - x0) * 2 - 1
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5 - y0) / (y1 - y0) * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


def uncrop(logits: torch.Tensor, box: Box, height: int, width: int) -> torch.Tensor:
    """Map ``logits [B, C, S, S]`` predicted on ``box`` back to ``[B, C, height, width]`` (bilinear)."""
    grid = box_to_grid(box, height, width, logits.device).expand(logits.shape[0], -1, -1, -1)
    return F.grid_sample(
        logits, grid.to(logits.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def random_square_box(
    width: int, height: int, bbox, rng: np.random.Generator, scale: tuple[float, float]
) -> Box:
    """A random square crop: side = U(scale) x the square around ``bbox`` (or the whole image),
    placed uniformly so that it stays inside that square."""
    if bbox is None:
        x0, y0, x1, y1 = 0.0, 0.0, float(width), float(height)
    else:
        x0, y0, x1, y1 = bbox
    side = max(x1 - x0, y1 - y0)
    crop = side * rng.uniform(*scale)
    slack = max(0.0, side - crop)
    cx = (x0 + x1) / 2 - slack / 2 + rng.uniform(0, slack) if slack else (x0 + x1) / 2
    cy = (y0 + y1) / 2 - slack / 2 + rng.uniform(0, slack) if slack else (y0 + y1) / 2
    return square_box(cx, cy, crop)


def default_cache_side(cfg: DataConfig) -> int:
    """Longer side of the in-memory image cache: ``cfg.cache_size`` when positive, else about 1.15x the
    input (the mean training crop covers 0.875 of the letterboxed image). Also φ's input side for the
    feature cache."""
    return cfg.cache_size if cfg.cache_size > 0 else math.ceil(1.15 * cfg.input_size)


class TrainingSet(Dataset):
    """Training samples ``{"image": [3,S,S], "fg_mask": [1,S,S], "index": int}`` from any :class:`PartDataset`.

    Images are decoded once and kept in memory, shrunk to ``cache_size`` on their longer side
    (decode and resize at most once per run, not once per epoch). Items are addressed by
    ``(index, aug_seed)`` pairs from :class:`StepBatchSampler`.
    """

    def __init__(self, dataset: PartDataset, cfg: DataConfig, features=None, feature_size: int = 0) -> None:
        self.dataset = dataset
        self.cfg = cfg
        # Optional FeatureCache or PartLabelCache (partdiscovery.data.feature_cache): then items also hold
        # "features" (φ of the crop from the cached map of the whole image, at feature_size x feature_size) or
        # "part_targets" (self-training's labels of the crop, at the cache's crop_size).
        self.features, self.feature_size = features, feature_size
        self.cache_size = cfg.cache_size if cfg.cache_size < 0 else default_cache_side(cfg)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, tuple | None]] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def _decoded(self, index: int) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        if index in self._cache:
            return self._cache[index]
        raw: RawSample = self.dataset.load(index)
        image = pil_to_tensor(raw.image)
        mask = torch.from_numpy(raw.fg_mask)[None].to(torch.uint8) * 255
        bbox = raw.bbox
        if self.cache_size > 0:
            h, w = image.shape[1:]
            factor = self.cache_size / max(h, w)
            if factor < 1:
                nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
                image = F.interpolate(image[None].float(), size=(nh, nw), mode="bilinear", antialias=True)[0]
                image = image.round().clamp(0, 255).to(torch.uint8)
                mask = F.interpolate(mask[None].float(), size=(nh, nw), mode="bilinear", antialias=True)[0]
                mask = mask.round().clamp(0, 255).to(torch.uint8)
                if bbox is not None:
                    bbox = tuple(v * factor for v in bbox)
            self._cache[index] = (image, mask, bbox)
        return image, mask, bbox

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, aug_seed = key
        rng = np.random.default_rng(aug_seed)
        image, mask, bbox = self._decoded(index)
        h, w = image.shape[1:]
        # The paper's per-dataset crops (CUB/PASCAL jitter, DeepFashion RRC); bbox is already scaled to
        # the cached image. Datasets without their own crop answer None and get the generic one.
        box = self.dataset.train_box(w, h, bbox, rng) if self.cfg.dataset_crops else None
        if box is None:
            box = random_square_box(w, h, bbox, rng, self.cfg.crop_scale)
        size = self.cfg.input_size
        full, full_mask = image, mask
        image = crop_resize(image, box, size) / 255.0
        mask = (crop_resize(mask, box, size) > 127.5).float()
        flip = self.cfg.hflip and rng.random() < 0.5
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
        item = {"image": image.contiguous(), "fg_mask": mask.contiguous(), "index": index}
        if self.features is not None:
            # A FeatureCache, a PartLabelCache, or a method's own with FeatureCache's crop().
            cache = self.features
            side = getattr(cache, "crop_size", None) or self.feature_size
            extra = {"mask": full_mask} if getattr(cache, "needs_mask", False) else {}
            item[getattr(cache, "batch_key", "features")] = cache.crop(
                index, full, box, (side, side), flip, **extra
            )
        return item


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields, for step ``s = start_step, ..., steps - 1``, the batch of ``(index, aug_seed)`` pairs.

    Epoch ``e`` is a permutation seeded by ``(seed, e)``; the batch of step ``s`` is positions
    ``s*B .. s*B+B-1`` of the concatenated epochs. Nothing depends on process state, so resuming at
    step ``s`` reproduces the data order and augmentations of an uninterrupted run exactly.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        steps: int,
        seed: int,
        start_step: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError("the training split is empty")
        self.n, self.batch_size, self.steps, self.seed, self.start_step = (
            num_samples,
            batch_size,
            steps,
            seed,
            start_step,
        )
        # Distributed: this process yields positions [offset, offset + size) of each global batch
        # (the role of DistributedSampler, but a pure function of the step, so resuming stays exact).
        self.shard = shard or (0, batch_size)
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng(derive_seed(self.seed, 1, epoch)).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def batch(self, step: int) -> list[tuple[int, int]]:
        out = []
        for j in range(self.batch_size):
            position = step * self.batch_size + j
            epoch, offset = divmod(position, self.n)
            out.append((int(self._permutation(epoch)[offset]), derive_seed(self.seed, 2, step, j)))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        offset, size = self.shard
        for step in range(self.start_step, self.steps):
            yield self.batch(step)[offset : offset + size]

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)


class EvalSet(Dataset):
    """Evaluation/prediction samples: the network input plus what is needed to map back.

    Keys: ``image`` ``[3,S,S]`` float, ``fg_mask`` ``[1,S,S]``, ``box`` (the crop in source pixels),
    ``size`` ``(H, W)``, ``id``, and the raw sample's ``image_full`` ``uint8 [3,H,W]`` (the guide of the
    part refiner), ``fg_mask_full`` ``bool [H,W]``, ``gt_fg_mask_full`` (``None`` unless the dataset sets it),
    ``part_labels`` ``int64 [H,W] | None``, ``keypoints``, ``mask_given`` and ``extra``.
    """

    def __init__(self, dataset: PartDataset, input_size: int, box_fn=None) -> None:
        self.dataset = dataset
        self.input_size = input_size
        self.box_fn = box_fn or (lambda raw: letterbox_box(raw.image.width, raw.image.height))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        raw = self.dataset.load(index)
        box = self.box_fn(raw)
        full = pil_to_tensor(raw.image)
        image = crop_resize(full, box, self.input_size) / 255.0
        mask = torch.from_numpy(raw.fg_mask)[None].float()
        mask_in = (crop_resize(mask, box, self.input_size) > 0.5).float()
        return {
            "image": image,
            "fg_mask": mask_in,
            "box": box,
            "size": (raw.image.height, raw.image.width),
            "id": raw.id,
            "image_full": full,
            "fg_mask_full": raw.fg_mask,
            "gt_fg_mask_full": raw.gt_fg_mask,
            "part_labels": raw.part_labels,
            "keypoints": raw.keypoints,
            "mask_given": raw.mask_given,
            "extra": raw.extra,
        }


def collate_eval(items: list[dict]) -> dict:
    """Stack the network inputs; keep per-image metadata as lists (images differ in size)."""
    out = {k: [it[k] for it in items] for k in items[0]}
    out["image"] = torch.stack(out["image"])
    out["fg_mask"] = torch.stack(out["fg_mask"])
    return out
