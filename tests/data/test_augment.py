"""Seeded batch augmentations: photometric jitter and random warps."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from partdiscovery.config import JitterConfig
from partdiscovery.data.augment import REFERENCE_FILL, photometric_jitter, random_warp_grid, warp


def images(b=4, h=16, w=16, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_jitter_keeps_shape_and_range_and_changes_images():
    x = images()
    cfg = dataclasses.replace(JitterConfig(), p=1.0, grayscale_p=0.0)
    y = photometric_jitter(x, cfg, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    per_image_change = (y - x).abs().mean(dim=(1, 2, 3))
    assert bool((per_image_change > 1e-3).all())


def test_jitter_is_deterministic_for_a_generator_seed_and_varies_with_it():
    x = images()
    a = photometric_jitter(x, JitterConfig(), torch.Generator().manual_seed(7))
    b = photometric_jitter(x, JitterConfig(), torch.Generator().manual_seed(7))
    c = photometric_jitter(x, JitterConfig(), torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_jitter_with_probability_zero_is_identity():
    x = images()
    cfg = dataclasses.replace(JitterConfig(), p=0.0, grayscale_p=0.0)
    y = photometric_jitter(x, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, x, atol=1e-4, rtol=0)


def test_grayscale_probability_one_gives_grey_images():
    y = photometric_jitter(
        images(), dataclasses.replace(JitterConfig(), grayscale_p=1.0), torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(y[:, 0], y[:, 1])
    torch.testing.assert_close(y[:, 1], y[:, 2])


def test_jitter_of_extreme_images_stays_in_range():
    x = torch.cat([torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)])
    cfg = JitterConfig(brightness=0.9, contrast=0.9, saturation=0.9, hue=0.5, p=1.0, grayscale_p=0.5)
    y = photometric_jitter(x, cfg, torch.Generator().manual_seed(0))
    assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1


def identity_grid(b=2, h=10, w=14, seed=0):
    return random_warp_grid(
        b,
        h,
        w,
        torch.Generator().manual_seed(seed),
        tps_sigma=0.0,
        rotation_deg=0.0,
        zoom_range=(1.0, 1.0),
        translation=0.0,
    )


def test_identity_warp_grid_is_the_pixel_centre_grid():
    grid = identity_grid()
    assert grid.shape == (2, 10, 14, 2)
    xs = (torch.arange(14) + 0.5) / 14 * 2 - 1
    ys = (torch.arange(10) + 0.5) / 10 * 2 - 1
    torch.testing.assert_close(grid[0, 3, :, 0], xs, atol=1e-5, rtol=0)
    torch.testing.assert_close(grid[1, :, 5, 1], ys, atol=1e-5, rtol=0)
    x = torch.rand(2, 3, 10, 14)
    torch.testing.assert_close(warp(x, grid), x, atol=1e-4, rtol=0)
    labels = torch.randint(0, 5, (2, 1, 10, 14)).float()
    assert torch.equal(warp(labels, grid, mode="nearest"), labels)


def test_random_warp_moves_pixels_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(3, 16, 16, g)
    assert grid.shape == (3, 16, 16, 2) and torch.isfinite(grid).all()
    ident = identity_grid(3, 16, 16)
    moved = (grid - ident).norm(dim=-1).mean(dim=(1, 2))
    assert bool((moved > 0.01).all())
    again = random_warp_grid(3, 16, 16, torch.Generator().manual_seed(0))
    assert torch.equal(grid, again)
    x = torch.rand(3, 1, 16, 16)
    assert not torch.allclose(warp(x, grid), x, atol=1e-2)


def test_pure_translation_shifts_every_pixel_equally():
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        1, 8, 8, g, tps_sigma=0.0, rotation_deg=0.0, zoom_range=(1.0, 1.0), translation=0.25
    )
    shift = grid - identity_grid(1, 8, 8)
    # A translation is the same everywhere and at most 0.25 in normalised units.
    torch.testing.assert_close(shift, shift[:, :1, :1].expand_as(shift), atol=1e-5, rtol=0)
    assert float(shift.abs().max()) <= 0.25 + 1e-6


def test_warp_resizes_a_grid_of_another_resolution():
    # Not square: a grid resized to (W, H) instead of (H, W) must fail.
    grid = identity_grid(1, 20, 28)
    x = torch.rand(1, 2, 10, 14)
    torch.testing.assert_close(warp(x, grid), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_zoom_magnifies_about_the_centre(scale):
    grid = random_warp_grid(
        1,
        8,
        8,
        torch.Generator().manual_seed(0),
        tps_sigma=0.0,
        rotation_deg=0.0,
        zoom_range=(scale, scale),
        translation=0.0,
    )
    torch.testing.assert_close(grid, identity_grid(1, 8, 8) / scale, atol=1e-5, rtol=0)


def test_zoom_distribution_matches_the_reference():
    """Reference (tps/rand_tps.py): sampling scale U(1/2.0, 1/0.7), so content zoom in [0.7, 2.0],
    median about 1.03, magnifying a little over half of the time."""
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(4000, 3, 3, g, tps_sigma=0.0, rotation_deg=0.0, translation=0.0)
    zoom = 1.0 / (grid[:, 1, 2, 0] / (2 / 3))  # the pixel right of the centre sits at x = 2/3
    assert float(zoom.min()) >= 0.7 - 1e-4 and float(zoom.max()) <= 2.0 + 1e-4
    assert 1.0 < float(zoom.median()) < 1.08
    assert 0.5 < float((zoom > 1).float().mean()) < 0.58


def test_tps_moves_pixels_by_about_sigma():
    """Uniform control-point noise as in the reference; the spline passes through its control points,
    so pixels between them move by about sigma, not more (a swapped fit once moved them by 9 sigma)."""
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        64, 5, 5, g, tps_sigma=0.05, rotation_deg=0.0, zoom_range=(1.0, 1.0), translation=0.0
    )
    moved = (grid - identity_grid(64, 5, 5)).abs()
    # Pixel centres are not control points: the spline moves them a little more than sigma at most.
    assert 0.03 < float(moved.max()) <= 1.5 * 0.05


def test_warp_fill_pads_outside_with_the_given_colour():
    grid = identity_grid(1, 4, 4) * 3.0  # samples mostly outside the image
    x = torch.zeros(1, 3, 4, 4)
    out = warp(x, grid, fill=REFERENCE_FILL)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(REFERENCE_FILL), atol=1e-6, rtol=0)
    torch.testing.assert_close(warp(x, identity_grid(1, 4, 4), fill=REFERENCE_FILL), x, atol=1e-5, rtol=0)


JITTERS = ("brightness", "contrast", "saturation", "hue")


@pytest.mark.parametrize("name", JITTERS)
def test_each_jitter_matches_torchvision(name):
    """Each adjustment alone equals torchvision's with the same factor (the others at strength 0): not only
    saturation, so that e.g. a contrast about the batch's mean or a hue shift in the wrong unit shows."""
    import torchvision.transforms.functional as TF

    strength = 0.3 if name == "hue" else 0.5
    cfg = JitterConfig(**{n: strength if n == name else 0.0 for n in JITTERS}, p=1.0, grayscale_p=0.0)
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    out = photometric_jitter(images, cfg, torch.Generator().manual_seed(2))
    factors = torch.Generator().manual_seed(2)
    torch.rand(6, generator=factors)  # apply
    draw = [torch.rand(6, generator=factors) for _ in JITTERS][JITTERS.index(name)]  # drawn in this order
    factor = strength * (2 * draw - 1) + (0.0 if name == "hue" else 1.0)
    adjust = getattr(TF, f"adjust_{name}")
    expected = torch.stack([adjust(images[i], float(factor[i])) for i in range(6)])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_rotation_is_in_degrees_and_spans_the_range():
    """Only rotation: the pixel right of the centre turns by the drawn angle, within +-30 degrees."""
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        500, 3, 3, g, tps_sigma=0.0, rotation_deg=30.0, zoom_range=(1.0, 1.0), translation=0.0
    )
    angle = torch.rad2deg(torch.atan2(grid[:, 1, 2, 1], grid[:, 1, 2, 0]))
    assert float(angle.abs().max()) <= 30.0 + 1e-3 and float(angle.min()) < -25 and float(angle.max()) > 25


def test_hflip_mirrors_the_warp_and_leaves_the_other_draws_unchanged():
    ident = identity_grid(6, 8, 8)
    mirrored = ident.clone()
    mirrored[..., 0] = -mirrored[..., 0]
    grid = random_warp_grid(6, 8, 8, torch.Generator().manual_seed(0), 0.0, 0.0, (1.0, 1.0), 0.0, hflip=1.0)
    torch.testing.assert_close(grid, mirrored, atol=1e-5, rtol=0)
    x = torch.rand(6, 2, 8, 8)
    torch.testing.assert_close(warp(x, grid), x.flip(-1), atol=1e-4, rtol=0)
    # hflip draws last: without a mirror the other draws (TPS, rotation, zoom, shift) are unchanged.
    plain = random_warp_grid(6, 8, 8, torch.Generator().manual_seed(3))
    some = random_warp_grid(6, 8, 8, torch.Generator().manual_seed(3), hflip=0.5)
    kept = (some - plain).abs().amax(dim=(1, 2, 3)) < 1e-6
    flipped_x = torch.stack([-plain[..., 0], plain[..., 1]], -1)
    flipped = (some - flipped_x).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert bool((kept ^ flipped).all()) and kept.any() and flipped.any()


def test_the_spline_passes_through_its_control_points_whichever_kornia_is_installed():
    """kornia 0.9.2 moved the kernels of ``get_tps_transform`` to its first argument; with the old choice of
    centres the warp moved pixels by 8 sigma (the test above failed on a fresh install)."""
    from kornia.geometry.transform import warp_points_tps

    from partdiscovery.data.augment import _fit_tps, _tps_centres

    g = torch.Generator().manual_seed(1)
    lin = torch.linspace(-1, 1, 5)
    cy, cx = torch.meshgrid(lin, lin, indexing="ij")
    src = torch.stack([cx, cy], -1).reshape(1, -1, 2)
    dst = src + 0.05 * (2 * torch.rand(src.shape, generator=g) - 1)
    kernel_weights, affine_weights = _fit_tps(src, dst)
    centres = src if _tps_centres() == "source" else dst
    torch.testing.assert_close(
        warp_points_tps(src, centres, kernel_weights, affine_weights), dst, atol=1e-5, rtol=0
    )


def test_translation_is_applied_after_rotation_and_zoom_independently_per_axis():
    """The centre pixel of an odd-sized image sits at (0, 0), where rotation and zoom do nothing: it lands on the
    shift itself, U(+-translation) on each axis, whatever the zoom (a shift zoomed or rotated with the content would
    reach 0.1 / 0.5 = 0.2 here). x and y are drawn independently."""
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        400, 3, 3, g, tps_sigma=0.0, rotation_deg=60.0, zoom_range=(0.5, 0.5), translation=0.1
    )
    centre = grid[:, 1, 1]  # [B, 2]
    assert float(centre.abs().max()) <= 0.1 + 1e-6 and float(centre.abs().max()) > 0.09
    assert (centre[:, 0] - centre[:, 1]).abs().max() > 0.05  # not the same shift on both axes
    assert abs(float(torch.corrcoef(centre.T)[0, 1])) < 0.2


def test_a_shard_draws_its_slice_of_the_global_batch():
    """Under DDP every process draws the global batch's parameters and keeps its rows, so that a distributed step
    augments each image exactly as a single process would."""
    from partdiscovery.utils.distributed import Shard

    x = images(b=4)
    whole_grid = random_warp_grid(4, 8, 8, torch.Generator().manual_seed(0), hflip=0.5)
    whole_jitter = photometric_jitter(x, JitterConfig(p=1.0), torch.Generator().manual_seed(0))
    shard = Shard(offset=2, size=2, total=4)
    grid = random_warp_grid(2, 8, 8, torch.Generator().manual_seed(0), shard=shard, hflip=0.5)
    jittered = photometric_jitter(x[2:], JitterConfig(p=1.0), torch.Generator().manual_seed(0), shard)
    torch.testing.assert_close(grid, whole_grid[2:])
    torch.testing.assert_close(jittered, whole_jitter[2:])
