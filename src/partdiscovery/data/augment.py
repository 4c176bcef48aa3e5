"""Batched, seeded augmentations of the training step: photometric jitter and random warps.

Both take an explicit ``torch.Generator`` so a training step's randomness depends only on
``(seed, step)`` (exact resume, no global RNG state).
"""

from __future__ import annotations

import functools
import math
import warnings

import kornia
import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_tps_transform, warp_points_tps

from partdiscovery.config import JitterConfig
from partdiscovery.utils.distributed import Shard


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _draw_count(batch: int, shard: Shard | None) -> tuple[int, slice]:
    """Draw random parameters for the whole global batch and keep this process's slice, so that a
    distributed step draws exactly what a single process would."""
    if shard is None:
        return batch, slice(0, batch)
    return shard.total, slice(shard.offset, shard.offset + shard.size)


def photometric_jitter(
    images: torch.Tensor, cfg: JitterConfig, generator: torch.Generator, shard: Shard | None = None
) -> torch.Tensor:
    """Colour jitter of ``images [B, 3, H, W]`` in [0, 1], each image with its own random factors.

    As torchvision's ``ColorJitter(brightness, contrast, saturation, hue)`` applied with probability
    ``cfg.p``, then ``RandomGrayscale(cfg.grayscale_p)`` (the reference code's jitter); the four
    adjustments are applied in a fixed order (brightness, contrast, saturation, hue) rather than a
    random one, which keeps the batch vectorised. Saturation blends with the grey image as torchvision
    does (kornia's ``adjust_saturation`` scales HSV saturation instead: up to 0.12 apart on [0, 1]).
    """
    n, mine = _draw_count(images.shape[0], shard)
    g = generator
    apply = (torch.rand(n, generator=g) < cfg.p).float()

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(n, max(0.0, 1 - strength), 1 + strength, g)
        return (apply * f + (1 - apply))[mine].to(images)

    bright, contrast, sat = factor(cfg.brightness), factor(cfg.contrast), factor(cfg.saturation)
    hue = (apply * _uniform(n, -cfg.hue, cfg.hue, g))[mine].to(images)
    gray = (torch.rand(n, generator=g) < cfg.grayscale_p)[mine].to(images)

    x = (images * bright.view(-1, 1, 1, 1)).clamp(0, 1)
    mean = kornia.color.rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast.view(-1, 1, 1, 1) + mean).clamp(0, 1)
    x = kornia.enhance.adjust_saturation_with_gray_subtraction(x, sat)
    x = kornia.enhance.adjust_hue(x, hue * 2 * math.pi)
    x = x.clamp(0, 1)
    grey = kornia.color.rgb_to_grayscale(x).expand_as(x)
    return torch.lerp(x, grey, gray.view(-1, 1, 1, 1))


def _fit_tps(src: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``get_tps_transform(src, dst)`` without kornia 0.9.1+'s ``FutureWarning`` about the kernel centres, which
    :func:`_tps_centres` settles."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*get_tps_transform.*")
        return get_tps_transform(src, dst)


@functools.cache
def _tps_centres() -> str:
    """Which argument of ``get_tps_transform`` kornia centres the spline's kernels on, ``"source"`` or ``"target"``:
    kornia 0.9.2 centres them on the first (``warp_points_tps`` then takes the source points), earlier versions on
    the second. Found once by fitting a small spline and checking which choice passes through its control points,
    so that the spline passes through its control points whichever kornia is installed. (The two are different
    interpolants between the control points: at the presets' σ = 0.01 the sampling grids of kornia 0.9.0 and 0.9.2
    differ by at most 6e-4 of the normalised [-1, 1] range, 0.03 % of the image side; at σ = 0.05 by 0.018.)"""
    lin = torch.linspace(-1, 1, 3, dtype=torch.float64)
    cy, cx = torch.meshgrid(lin, lin, indexing="ij")
    src = torch.stack([cx, cy], -1).reshape(1, -1, 2)
    dst = src + 0.1 * torch.sin(7 * src + torch.tensor([0.3, 1.1], dtype=torch.float64))
    kernel_weights, affine_weights = _fit_tps(src, dst)
    on_source = warp_points_tps(src, src, kernel_weights, affine_weights)
    return "source" if torch.allclose(on_source, dst, atol=1e-6) else "target"


def random_warp_grid(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    tps_sigma: float = 0.01,
    rotation_deg: float = 60.0,
    zoom_range: tuple[float, float] = (0.7, 2.0),
    translation: float = 0.1,
    control_points: int = 5,
    shard: Shard | None = None,
    hflip: float = 0.0,
) -> torch.Tensor:
    """Random sampling grids ``[B, H, W, 2]`` (normalised coords, ``align_corners=False``).

    The reference code's warp (``tps/rand_tps.py``, mode ``affine``): a thin-plate spline through a
    ``control_points x control_points`` grid whose points move by U(-tps_sigma, tps_sigma), composed
    with a random similarity: rotation U(±rotation_deg), translation U(±translation) of the half-size
    and a content zoom in ``zoom_range`` (> 1 magnifies). As in the reference, the sampling scale
    ``1/zoom`` is drawn uniformly from ``[1/zoom_range[1], 1/zoom_range[0]]``; with the default
    (0.7, 2.0) the median zoom is 1.03 and a little over half of the warps magnify.
    ``F.grid_sample(x, grid)`` gives ``T(x)``: output pixel p shows input pixel grid[p].

    ``hflip``: the probability that T also mirrors left and right (not in the reference). Its draw
    comes after all the others, so the other draws are the same whatever its value.
    """
    g = generator
    batch, mine = _draw_count(batch, shard)
    lin = torch.linspace(-1, 1, control_points)
    cy, cx = torch.meshgrid(lin, lin, indexing="ij")
    src = torch.stack([cx, cy], -1).reshape(1, -1, 2).expand(batch, -1, -1)
    dst = src + tps_sigma * (2 * torch.rand(src.shape, generator=g) - 1)

    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx, gy], -1).reshape(1, -1, 2).expand(batch, -1, -1)
    # get_tps_transform(a, b) fits the map a -> b; which points warp_points_tps must take as the kernel centres
    # depends on kornia's version (_tps_centres). (Until 0.2 the arguments were swapped: the spline missed its
    # control points and moved pixels by up to 2.2 sigma at sigma = 0.01, 9 sigma at 0.05, instead of about 1.2.)
    kernel_weights, affine_weights = _fit_tps(src, dst)
    points = warp_points_tps(
        points, src if _tps_centres() == "source" else dst, kernel_weights, affine_weights
    )

    angle = _uniform(batch, -rotation_deg, rotation_deg, g) * math.pi / 180
    sampling_scale = _uniform(batch, 1.0 / zoom_range[1], 1.0 / zoom_range[0], g)
    shift = _uniform(2 * batch, -translation, translation, g).view(batch, 1, 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    points = torch.einsum("bij,bnj->bni", rot * sampling_scale.view(-1, 1, 1), points) + shift
    if hflip > 0:
        mirrored = (torch.rand(batch, generator=g) < hflip).view(batch, 1)
        points[..., 0] = torch.where(mirrored, -points[..., 0], points[..., 0])
    return points.view(batch, height, width, 2)[mine]


REFERENCE_FILL = (0.481, 0.458, 0.408)
"""RGB in [0, 1] that the reference code's warp pads images with: its inputs are mean-subtracted
(Caffe mean 122.7, 116.7, 104.0), so its zero padding is this mean colour, not black."""


def warp(
    x: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", fill: tuple[float, ...] | None = None
) -> torch.Tensor:
    """Apply a grid from :func:`random_warp_grid` to ``x [B, C, H, W]``.

    Outside the source, the result is 0, or ``fill`` (one value per channel) when given.
    """
    if grid.shape[1:3] != x.shape[-2:]:
        grid = F.interpolate(
            grid.permute(0, 3, 1, 2), size=x.shape[-2:], mode="bilinear", align_corners=False
        ).permute(0, 2, 3, 1)
    if fill is None:
        return F.grid_sample(x, grid.to(x), mode=mode, padding_mode="zeros", align_corners=False)
    value = torch.tensor(fill, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return F.grid_sample(x - value, grid.to(x), mode=mode, padding_mode="zeros", align_corners=False) + value
