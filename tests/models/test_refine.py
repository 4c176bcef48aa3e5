"""models/refine.py: snapping part maps to the image's edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from partdiscovery.config import PredictConfig
from partdiscovery.errors import ConfigError
from partdiscovery.models.refine import list_part_refiners, part_refiner, refine_labels, refine_probs

GUIDED = PredictConfig(refine="guided", refine_radius=0.16, refine_eps=1e-4)


def two_colours(height: int, width: int, edge: int) -> torch.Tensor:
    """``[1, 3, H, W]``: red left of column ``edge``, blue from it on."""
    image = torch.zeros(1, 3, height, width)
    image[:, 0, :, :edge] = 0.9
    image[:, 2, :, edge:] = 0.9
    return image


def split_parts(
    height: int, width: int, boundary: int, background: torch.Tensor | None = None, soft: float = 1.5
) -> torch.Tensor:
    """``[1, 3, H, W]`` probabilities of two parts that meet at column ``boundary``, over about ``soft`` px
    (f's maps upsampled from the input size)."""
    x = torch.arange(width).float()
    right = torch.sigmoid((x - boundary + 0.5) / soft).expand(height, width)
    parts = torch.stack([1 - right, right])[None]
    background = torch.zeros(1, 1, height, width) if background is None else background
    return torch.cat([background, parts * (1 - background)], dim=1)


def boundary_column(probs: torch.Tensor) -> float:
    """Mean column where the second part starts, over the rows."""
    second = (probs[0, 2] > probs[0, 1]).float()
    return float((1 - second).sum(dim=1).mean())


def test_the_registered_refiners():
    assert list_part_refiners() == ["guided", "none"]
    with pytest.raises(ConfigError, match="guided, none"):
        part_refiner("crf")


def test_none_returns_the_part_maps_as_they_are():
    probs = split_parts(20, 40, 14)
    assert refine_probs(two_colours(20, 40, 20), probs, PredictConfig(refine="none")) is probs


@pytest.mark.parametrize("size", [80, 320, 1200])  # 1200 px runs subsampled (the fast guided filter)
def test_guided_moves_a_part_boundary_towards_the_colour_edge_at_any_size(size):
    height, width, edge = size // 2, size, size // 2
    off = round(GUIDED.refine_radius * height * 2 / 3)  # f's boundary, off the edge within the window
    probs = split_parts(height, width, edge - off, soft=size / 80)
    assert boundary_column(probs) == pytest.approx(edge - off, abs=1)
    refined = boundary_column(refine_probs(two_colours(height, width, edge), probs, GUIDED))
    # A third of the way at every size (the window and f's blur scale with the image), never past the edge.
    assert edge - off * 3 / 4 <= refined <= edge
    # Without an edge in the image the boundary stays where f put it.
    flat = refine_probs(torch.full((1, 3, height, width), 0.5), probs, GUIDED)
    assert boundary_column(flat) == pytest.approx(edge - off, abs=size / 80)


@pytest.mark.parametrize("height, width", [(500, 1), (1, 300), (2, 2), (3, 700)])
def test_guided_takes_strips_and_tiny_images(height, width):
    """A window must fit the image: a 1-pixel strip is returned as it is, anything larger is filtered."""
    probs = split_parts(height, width, width // 2)
    refined = refine_probs(torch.rand(1, 3, height, width), probs, GUIDED)
    assert refined.shape == probs.shape and torch.isfinite(refined).all()
    # The window's radius is a fraction of the shorter side: a strip has none (from the longer side it would).
    assert torch.equal(refined, probs) == (min(height, width) == 1)
    torch.testing.assert_close(refined.sum(dim=1), torch.ones(1, height, width))


def test_guided_keeps_the_background_and_a_distribution():
    g = torch.Generator().manual_seed(0)
    background = (torch.rand(1, 1, 30, 50, generator=g) > 0.7).float()
    probs = split_parts(30, 50, 20, background)
    refined = refine_probs(torch.rand(1, 3, 30, 50, generator=g), probs, GUIDED)
    assert refined.shape == probs.shape
    assert torch.equal(refined[:, 0], probs[:, 0])
    assert (refined >= 0).all()
    torch.testing.assert_close(refined.sum(dim=1), torch.ones(1, 30, 50))
    assert (refined[:, 1:][background.expand(1, 2, 30, 50) > 0] == 0).all()


def test_refine_labels_snaps_a_clustering_and_keeps_its_background():
    image = (two_colours(40, 80, 40)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    parts = np.where(np.arange(80) < 36, 1, 2)[None].repeat(40, axis=0)
    parts[:3] = 0  # background rows
    refined = refine_labels(image, parts, 2, GUIDED)
    assert refined.dtype == np.int64 and (refined[:3] == 0).all()
    assert (refined[3:, :36] == 1).all() and (refined[3:, 40:] == 2).all()
    assert 36 < (refined[3:] == 1).sum(axis=1).mean() <= 40  # the boundary moved towards the edge
    # The guide is in [0, 1] as f's is: an edge of 3/255 lies below refine_eps and is not snapped to (read in 0..255
    # it was, and nothing above told the two apart).
    faint = (two_colours(40, 80, 40)[0].permute(1, 2, 0).numpy() / 0.9 * 3).astype(np.uint8)
    assert (refine_labels(faint, parts, 2, GUIDED)[3:] == 1).sum(axis=1).mean() == 36
    assert np.array_equal(refine_labels(image, parts, 2, PredictConfig(refine="none")), parts)
