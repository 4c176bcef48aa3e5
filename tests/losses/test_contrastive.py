"""The contrastive loss (losses/contrastive.py): InfoNCE on part prototypes across images."""

from __future__ import annotations

import math

import pytest
import torch

from partdiscovery.losses import (
    contrastive_loss,
    draw_positive_images,
)


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


@pytest.mark.parametrize(
    "positives, match",
    [
        (torch.tensor([0, 2, 3, 1]), "not the anchor's own"),  # image 0 is its own positive
        (torch.arange(4)[:, None].expand(4, 3), "not the anchor's own"),  # [B, K]: every anchor its own
        (
            torch.tensor([[1, 1, 1], [0, 0, 0], [3, 2, 3], [2, 2, 2]]),
            "not the anchor's own",
        ),  # one part of image 2
        (torch.tensor([1, 2, 3, 4]), "another image of the batch's 4"),
        # Negative: unchecked, -1 would index from the end, i.e. image 3's own prototypes.
        (torch.tensor([1, 2, 3, -1]), "another image of the batch's 4"),
        (torch.tensor([1, 2, 3]), r"positives must be \[4, 3\] or \[4\]"),
    ],
)
def test_given_positives_that_are_not_other_images_are_refused(positives, match):
    with pytest.raises(ValueError, match=match):
        contrastive_loss(torch.randn(4, 3, 8), positives=positives)


def test_default_temperature_is_the_papers():
    """τ = 0.19 (paper Sec. 4): a caller that relies on the default gets the paper's temperature."""
    prototypes = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0))
    positives = torch.tensor([1, 2, 0])
    default = contrastive_loss(prototypes, positives=positives)
    assert float(default) == pytest.approx(naive_info_nce(prototypes, positives, 0.19), rel=1e-5)


def test_a_batch_split_over_processes_gives_the_whole_batch_loss():
    """Under DDP each process holds B/2 anchors, the global batch's prototypes as keys, and the same generator: the
    mean of the shards' losses is the single-process loss (same positives, same negatives)."""
    prototypes = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(0))
    whole = contrastive_loss(prototypes, generator=torch.Generator().manual_seed(5))
    shards = [
        contrastive_loss(
            prototypes[offset : offset + 2],
            generator=torch.Generator().manual_seed(5),
            all_prototypes=prototypes,
            anchor_offset=offset,
        )
        for offset in (0, 2)
    ]
    torch.testing.assert_close((shards[0] + shards[1]) / 2, whole)


def test_given_positives_of_a_shard_are_checked_against_its_global_rows():
    """With ``anchor_offset`` the anchors are global rows offset.. offset + B: row 2's own image is 2, not 0."""
    everyone = torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(0))
    anchors = everyone[2:]
    with pytest.raises(ValueError, match="not the anchor's own"):
        contrastive_loss(anchors, positives=torch.tensor([2, 0]), all_prototypes=everyone, anchor_offset=2)
    # Image 0 is another image for global rows 2 and 3 (and image 1 for row 3).
    loss = contrastive_loss(anchors, positives=torch.tensor([0, 1]), all_prototypes=everyone, anchor_offset=2)
    assert torch.isfinite(loss)
