"""SCOPS's losses (partdiscovery.losses.scops) on hand-made inputs against their formulas."""

from __future__ import annotations

import itertools

import pytest
import torch

from partdiscovery.losses.scops import (
    centre_equivariance_loss,
    concentration_loss,
    nonnegative_features,
    orthonormality_loss,
    part_centres,
    semantic_consistency_loss,
)


def single_pixel_parts(h=4, w=5, pixels=((1, 2), (3, 0))):
    maps = torch.zeros(1, len(pixels), h, w, dtype=torch.float64)
    for k, (y, x) in enumerate(pixels):
        maps[0, k, y, x] = 1.0
    return maps


def coord(i, n):
    return (i + 0.5) / n * 2 - 1


def naive_concentration(maps, eps):
    b, k, h, w = maps.shape
    total = 0.0
    for i, j in itertools.product(range(b), range(k)):
        pdf = maps[i, j] + eps
        pdf = pdf / pdf.sum()
        cx = sum(float(pdf[y, x]) * coord(x, w) for y in range(h) for x in range(w))
        cy = sum(float(pdf[y, x]) * coord(y, h) for y in range(h) for x in range(w))
        total += sum(
            float(pdf[y, x]) * ((coord(x, w) - cx) ** 2 + (coord(y, h) - cy) ** 2)
            for y in range(h)
            for x in range(w)
        )
    return total / b


# ------------------------------------------------------------------------------------- geometry
def test_part_centres_of_single_pixels():
    centres = part_centres(single_pixel_parts(), eps=0.0)
    expected = [[coord(2, 5), coord(1, 4)], [coord(0, 5), coord(3, 4)]]
    torch.testing.assert_close(centres[0], torch.tensor(expected, dtype=torch.float64))
    # An empty part has a finite centre (the image centre) thanks to eps.
    assert torch.allclose(part_centres(torch.zeros(1, 1, 4, 4)), torch.zeros(1, 1, 2), atol=1e-6)


def test_concentration_is_zero_for_single_pixel_parts_and_matches_its_formula():
    assert float(concentration_loss(single_pixel_parts(), eps=0.0)) == 0.0
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    for eps in (0.0, 1e-3):
        assert float(concentration_loss(maps, eps)) == pytest.approx(naive_concentration(maps, eps), rel=1e-9)
    # A spread-out part is less concentrated than a compact one.
    compact = torch.zeros(1, 1, 8, 8)
    compact[..., 3:5, 3:5] = 1
    assert concentration_loss(torch.ones(1, 1, 8, 8)) > concentration_loss(compact)


def test_centre_equivariance():
    maps = single_pixel_parts()
    assert float(centre_equivariance_loss(maps, maps.clone(), eps=0.0)) == 0.0
    shifted = single_pixel_parts(pixels=((1, 3), (3, 0)))  # part 1 moves one pixel right: dx = 2/5
    # MSE over B * K * 2 = 4 coordinates, one of which differs by 0.4.
    assert float(centre_equivariance_loss(maps, shifted, eps=0.0)) == pytest.approx(0.4**2 / 4)


# ------------------------------------------------------------------------------------- semantics
def test_semantic_consistency_is_zero_for_exact_reconstructions_and_differentiable():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 3, 4, 5, generator=g).softmax(dim=1).requires_grad_()
    basis = torch.rand(3, 6, generator=g).requires_grad_()
    features = torch.einsum("bkhw,kc->bchw", maps, basis).detach()
    assert float(semantic_consistency_loss(maps, features, basis).detach()) == pytest.approx(0.0, abs=1e-12)
    loss = semantic_consistency_loss(maps, features + 0.5, basis)
    assert float(loss.detach()) == pytest.approx(0.25, rel=1e-5)  # every element off by 0.5
    loss.backward()
    assert maps.grad.abs().sum() > 0 and basis.grad.abs().sum() > 0


def test_orthonormality():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert float(orthonormality_loss(q[:4] * 3.0)) == pytest.approx(0.0, abs=1e-20)  # row norms do not matter
    assert float(orthonormality_loss(torch.ones(2, 3))) == pytest.approx(2.0)  # two identical rows
    basis = torch.rand(3, 5).requires_grad_()
    orthonormality_loss(basis).backward()
    assert basis.grad.abs().sum() > 0


def test_nonnegative_features():
    x = torch.tensor([[1.0, -2.0, 0.0]])
    torch.testing.assert_close(nonnegative_features(x), torch.tensor([[1.0, 0.0, 0.0, 0.0, 2.0, 0.0]]))
    torch.testing.assert_close(nonnegative_features(x, "clamp"), torch.tensor([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="split or clamp"):
        nonnegative_features(x, "abs")
