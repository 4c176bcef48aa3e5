"""The part-usage hinge: nothing for parts at or above floor / K, one per empty part, a pull on shrinking parts."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.losses import usage_loss


def test_parts_at_or_above_the_floor_cost_nothing():
    # K = 4, floor 0.25: tau = 1/16 of the foreground. Uneven but live parts are left alone.
    assert float(usage_loss(torch.tensor([10.0, 3.0, 2.0, 1.0]), torch.tensor(16.0))) == 0.0


def test_each_empty_part_costs_one_and_a_short_part_its_shortfall():
    area = torch.tensor(16.0)
    assert float(usage_loss(torch.tensor([16.0, 0.0, 0.0, 0.0]), area)) == pytest.approx(3.0)
    # A part at half of tau costs one half; the floor is a fraction of an even share.
    assert float(usage_loss(torch.tensor([15.5, 0.5, 0.0, 0.0]), area)) == pytest.approx(2.5)
    assert float(usage_loss(torch.tensor([12.0, 4.0, 0.0, 0.0]), area, floor=1.0)) == pytest.approx(2.0)


def test_the_gradient_grows_a_shrinking_part_through_the_softmax():
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 2] = -3.0  # part 2 holds about 2 % of the pixels: below tau = 0.25 / 3
    logits.requires_grad_(True)
    assign = logits.softmax(dim=1)
    usage_loss(assign.sum(dim=(0, 2, 3)), torch.tensor(16.0)).backward()
    assert (logits.grad[:, 2] < 0).all()  # descent raises part 2's logit everywhere
    assert (logits.grad[:, :2] > 0).all()
