"""The four losses of the paper against direct (loop) computations of their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from partdiscovery.data.augment import random_warp_grid, warp
from partdiscovery.losses import (
    contrastive_loss,
    draw_positive_images,
    equivariance_loss,
    feature_loss,
    part_means,
    rgb_to_lab,
    soft_part_variance,
    visual_consistency_loss,
)


def soft_inputs(b=2, k=3, c=5, h=6, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.randn(b, k, h, w, generator=g, dtype=torch.float64).softmax(dim=1)
    mask = (torch.rand(b, 1, h, w, generator=g, dtype=torch.float64) > 0.3).double()
    values = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    return probs * mask, values, mask


def naive_soft_variance(assign, values, mask):
    """Paper Eq. 2/4: 1/B sum_b [ sum_k sum_u R_k(u) ||v(u) - z_k||^2 / sum_u M(u) ], by loops."""
    b, k, h, w = assign.shape
    total = 0.0
    for i in range(b):
        within = 0.0
        for j in range(k):
            r = assign[i, j]
            z = (r[None] * values[i]).sum(dim=(1, 2)) / r.sum()
            for y in range(h):
                for x in range(w):
                    within += float(r[y, x]) * float(((values[i, :, y, x] - z) ** 2).sum())
        total += within / float(mask[i].sum())
    return total / b


def hard_constant_inputs():
    """One-hot assignments, and values that are constant within each part (different between parts)."""
    labels = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1], [2, 2, 2, 1]])
    assign = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1)[None].float()
    colours = torch.tensor([[0.1, 0.9], [0.5, -0.3], [-1.0, 0.2]])  # [K, C]
    values = colours[labels].permute(2, 0, 1)[None]
    return assign, values, torch.ones(1, 1, 3, 4)


# ------------------------------------------------------------------------------------------ prototypes
def test_part_means_are_weighted_means():
    assign, values, _ = soft_inputs()
    means, mass = part_means(assign, values)
    assert means.shape == (2, 3, 5) and mass.shape == (2, 3)
    expected = (assign[:, :, None] * values[:, None]).sum(dim=(3, 4)) / assign.sum(dim=(2, 3))[..., None]
    torch.testing.assert_close(means, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(mass, assign.sum(dim=(2, 3)))


# --------------------------------------------------------------------------------- feature and visual
def test_feature_loss_zero_for_constant_parts_positive_otherwise():
    assign, values, mask = hard_constant_inputs()
    loss, prototypes = feature_loss(assign, values, mask)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(
        prototypes[0], torch.tensor([[0.1, 0.9], [0.5, -0.3], [-1.0, 0.2]]), atol=1e-5, rtol=1e-5
    )
    noisy = values + 0.1 * torch.randn(values.shape, generator=torch.Generator().manual_seed(0))
    assert float(feature_loss(assign, noisy, mask)[0]) > 1e-3


def test_feature_loss_equals_the_paper_formula():
    assign, values, mask = soft_inputs()
    loss, _ = feature_loss(assign, values, mask)
    assert float(loss) == pytest.approx(naive_soft_variance(assign, values, mask), rel=1e-5, abs=1e-7)


def test_visual_loss_equals_the_paper_formula_in_lab():
    g = torch.Generator().manual_seed(1)
    assign, _, mask = soft_inputs(seed=1)
    images = torch.rand(2, 3, 6, 7, generator=g)
    lab = rgb_to_lab(images).double()
    loss = visual_consistency_loss(assign, lab, mask)
    assert float(loss) == pytest.approx(naive_soft_variance(assign, lab, mask), rel=1e-5, abs=1e-7)
    hard, _, ones = hard_constant_inputs()
    flat = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 3, 4)
    assert float(visual_consistency_loss(hard, rgb_to_lab(flat), ones)) == pytest.approx(0, abs=1e-6)


def test_lab_is_raw_like_the_reference_skimage_rgb2lab():
    """The paper's visual weight (30) is for raw Lab (L in 0..100), as skimage computes it."""
    from skimage.color import rgb2lab

    images = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(3))
    expected = torch.from_numpy(rgb2lab(images[0].permute(1, 2, 0).numpy())).permute(2, 0, 1).float()
    torch.testing.assert_close(rgb_to_lab(images)[0], expected, atol=2e-2, rtol=0)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0]), atol=0.2, rtol=0)


def test_losses_average_over_the_batch():
    assign, values, mask = soft_inputs(b=1)
    one = feature_loss(assign, values, mask)[0]
    two = feature_loss(assign.repeat(2, 1, 1, 1), values.repeat(2, 1, 1, 1), mask.repeat(2, 1, 1, 1))[0]
    assert float(two) == pytest.approx(float(one), rel=1e-9)
    a2, v2, m2 = soft_inputs(b=1, seed=5)
    pair = feature_loss(torch.cat([assign, a2]), torch.cat([values, v2]), torch.cat([mask, m2]))[0]
    assert float(pair) == pytest.approx((float(one) + float(feature_loss(a2, v2, m2)[0])) / 2, rel=1e-9)


def test_soft_variance_is_normalised_by_foreground_area():
    assign, values, mask = soft_inputs(b=1)
    padded = [torch.nn.functional.pad(t, (0, 7)) for t in (assign, values, mask)]  # zeros: no new fg
    assert float(soft_part_variance(*padded)[0]) == pytest.approx(
        float(soft_part_variance(assign, values, mask)[0])
    )


# -------------------------------------------------------------------------------------- contrastive
def naive_info_nce(prototypes, positives, temperature):
    b, k, _ = prototypes.shape
    z = torch.nn.functional.normalize(prototypes.double(), dim=-1)
    total = 0.0
    for i in range(b):
        for j in range(k):
            anchor = z[i, j]
            pos = math.exp(float(anchor @ z[int(positives[i]), j]) / temperature)
            neg = sum(
                math.exp(float(anchor @ z[i2, j2]) / temperature)
                for i2 in range(b)
                for j2 in range(k)
                if j2 != j
            )
            total += -math.log(pos / (pos + neg))
    return total / (b * k)


def test_contrastive_equals_naive_info_nce():
    g = torch.Generator().manual_seed(0)
    prototypes = torch.randn(4, 3, 8, generator=g)
    positives = torch.tensor([2, 0, 3, 1])
    loss = contrastive_loss(prototypes, 0.19, positives=positives)
    assert float(loss) == pytest.approx(naive_info_nce(prototypes, positives, 0.19), rel=1e-5)
    loss = contrastive_loss(prototypes, 0.5, positives=torch.tensor([1, 2, 1, 0]))
    assert float(loss) == pytest.approx(naive_info_nce(prototypes, torch.tensor([1, 2, 1, 0]), 0.5), rel=1e-5)


def test_contrastive_prefers_matched_prototypes():
    g = torch.Generator().manual_seed(0)
    b, k, c = 4, 4, 16
    directions = torch.nn.functional.normalize(torch.randn(k, c, generator=g), dim=-1)
    matched = directions[None].repeat(b, 1, 1) + 0.1 * torch.randn(b, k, c, generator=g)
    shuffled = torch.stack([matched[i].roll(i, dims=0) for i in range(b)])  # image i: parts shifted by i
    positives = torch.tensor([1, 2, 3, 0])
    low = float(contrastive_loss(matched, positives=positives))
    high = float(contrastive_loss(shuffled, positives=positives))
    assert low < 0.5 * high
    assert low < math.log(1 + (k - 1) * b)  # better than chance (all similarities equal)


def test_positive_images_are_never_self_and_cover_every_other_image():
    g = torch.Generator().manual_seed(0)
    b, k = 5, 3
    seen = torch.zeros(k, b, b, dtype=torch.long)
    for _ in range(400):
        positives = draw_positive_images(b, k, g)
        assert positives.shape == (b, k) and positives.dtype == torch.long
        assert bool((positives != torch.arange(b)[:, None]).all())
        for part in range(k):
            seen[part, torch.arange(b), positives[:, part]] += 1
    off_diagonal = ~torch.eye(b, dtype=torch.bool)
    # Every other image is drawn, the first other one too (the reference never draws it).
    assert bool((seen[:, off_diagonal] > 0).all())
    # Roughly uniform: each of the 4 others about 100 times out of 400, for every part.
    assert int(seen[:, off_diagonal].min()) > 60 and int(seen[:, off_diagonal].max()) < 140
    # Parts draw independently (the reference draws per part, too).
    assert not torch.equal(seen[0], seen[1])
    assert draw_positive_images(2, 2).tolist() == [[1, 1], [0, 0]]
    with pytest.raises(ValueError):
        draw_positive_images(1, 2)


def test_contrastive_per_part_positives_equal_per_image_when_they_agree():
    prototypes = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(0))
    per_image = torch.tensor([2, 0, 3, 1])
    a = contrastive_loss(prototypes, positives=per_image)
    b = contrastive_loss(prototypes, positives=per_image[:, None].expand(4, 3))
    torch.testing.assert_close(a, b)


def test_contrastive_is_reproducible_with_a_generator_and_differentiable():
    prototypes = torch.randn(3, 4, 6, requires_grad=True)
    a = contrastive_loss(prototypes, generator=torch.Generator().manual_seed(3))
    b = contrastive_loss(prototypes, generator=torch.Generator().manual_seed(3))
    assert float(a.detach()) == float(b.detach())
    a.backward()
    assert (
        prototypes.grad is not None
        and torch.isfinite(prototypes.grad).all()
        and prototypes.grad.abs().sum() > 0
    )


# -------------------------------------------------------------------------------------- equivariance
def naive_kl(pred_log_probs, target, valid):
    b = target.shape[0]
    total = 0.0
    for i in range(b):
        num = 0.0
        for y in range(target.shape[2]):
            for x in range(target.shape[3]):
                t, lp = target[i, :, y, x], pred_log_probs[i, :, y, x]
                kl = sum(
                    float(t[j]) * (math.log(float(t[j])) - float(lp[j]))
                    for j in range(t.shape[0])
                    if t[j] > 0
                )
                num += float(valid[i, 0, y, x]) * kl
        total += num / max(1.0, float(valid[i].sum()))
    return total / b


def test_equivariance_zero_for_identical_distributions_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64)
    valid = torch.ones(2, 1, 5, 6, dtype=torch.float64)
    same = equivariance_loss(logits.log_softmax(1), logits.softmax(1), valid)
    assert float(same) == pytest.approx(0.0, abs=1e-12)
    other = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64).softmax(1)
    loss = equivariance_loss(logits.log_softmax(1), other, valid)
    assert float(loss) > 1e-2
    assert float(loss) == pytest.approx(naive_kl(logits.log_softmax(1), other, valid), rel=1e-9)


def test_equivariance_ignores_invalid_pixels():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 4, 4, generator=g)
    target = torch.randn(1, 3, 4, 4, generator=g).softmax(1)
    valid = torch.zeros(1, 1, 4, 4)
    valid[..., :2, :] = 1
    changed = logits.clone()
    changed[..., 2:, :] = torch.randn(1, 3, 2, 4, generator=g) * 5
    a = equivariance_loss(logits.log_softmax(1), target, valid)
    b = equivariance_loss(changed.log_softmax(1), target, valid)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    assert float(a) == pytest.approx(naive_kl(logits.log_softmax(1), target, valid), rel=1e-5)


def test_identity_warp_gives_zero_equivariance_loss():
    g = torch.Generator().manual_seed(0)
    grid = random_warp_grid(
        2, 12, 12, g, tps_sigma=0.0, rotation_deg=0.0, zoom_range=(1.0, 1.0), translation=0.0
    )
    logits = torch.randn(2, 4, 12, 12, generator=g)
    torch.testing.assert_close(warp(logits, grid), logits, atol=1e-4, rtol=0)
    target = warp(logits.softmax(1), grid)
    loss = equivariance_loss(logits.log_softmax(1), target, torch.ones(2, 1, 12, 12))
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_equivariance_gradients_reach_logits_not_target():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).softmax(1).requires_grad_(True)
    valid = (torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64) > 0.3).double()

    assert torch.autograd.gradcheck(lambda x: equivariance_loss(x.log_softmax(1), target, valid), (logits,))
    loss = equivariance_loss(logits.log_softmax(1), target, valid)
    loss.backward()
    assert target.grad is None
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # Zero gradient where the pixel is not valid.
    assert float(logits.grad.mul(1 - valid).abs().sum()) == 0.0
