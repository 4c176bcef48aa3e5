"""losses/self_training.py: a cross-entropy to the teacher's parts over the foreground only."""

from __future__ import annotations

import math

import torch

from partdiscovery.losses import self_training_loss


def test_the_loss_is_the_mean_negative_log_probability_of_the_target_over_foreground_pixels():
    logits = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])  # K = 2, one row of two pixels
    targets = torch.tensor([[[[1, 0]]]])
    # Pixel 0: uniform, target 1 -> log 2. Pixel 1: logits (2, 0), target 0 -> log(1 + e^-2).
    both = self_training_loss(logits, targets, torch.ones(1, 1, 1, 2))
    assert math.isclose(float(both), (math.log(2) + math.log(1 + math.exp(-2))) / 2, rel_tol=1e-6)
    # Background pixels (mask <= 0.5) neither count nor dilute the mean.
    first = self_training_loss(logits, targets, torch.tensor([[[[0.9, 0.5]]]]))
    assert math.isclose(float(first), math.log(2), rel_tol=1e-6)


def test_no_foreground_costs_nothing_and_gives_a_zero_gradient():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = self_training_loss(logits, torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 1, 4, 4))
    loss.backward()
    assert float(loss) == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_the_gradient_raises_the_target_part_at_foreground_pixels_only():
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    targets = torch.tensor([[[[2, 0], [1, 1]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    self_training_loss(logits, targets, mask).backward()
    grad = logits.grad[0]
    assert grad[2, 0, 0] < 0 and grad[1, 1, 0] < 0  # descending the loss raises the target's logit
    assert torch.count_nonzero(grad[:, :, 1]) == 0  # the background column
