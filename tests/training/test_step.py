"""train_step: one update on a finite loss, no trace of a non-finite one; the step's random stream."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from partdiscovery.training.step import STEP_STREAM, step_generator, train_step
from partdiscovery.utils.seed import torch_generator


class Toy(nn.Module):
    """A method with a BatchNorm (running statistics change in the forward pass) and a scalable loss."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.scale, self.dtypes = 1.0, []

    def training_step(self, batch, generator, shard=None):
        out = self.net(batch["image"] + torch.rand(3, generator=generator))
        self.dtypes.append(out.dtype)
        return {"total": (out**2).mean() * self.scale}


def _batch():
    return {"image": torch.randn(8, 3, generator=torch.Generator().manual_seed(1))}


def test_step_generator_is_a_pure_function_of_seed_and_step():
    draw = lambda g: torch.rand(4, generator=g)  # noqa: E731
    assert torch.equal(draw(step_generator(7, 3)), draw(step_generator(7, 3)))
    assert torch.equal(draw(step_generator(7, 3)), draw(torch_generator(7, STEP_STREAM, 3)))
    assert not torch.equal(draw(step_generator(7, 3)), draw(step_generator(7, 4)))
    assert not torch.equal(draw(step_generator(7, 3)), draw(step_generator(8, 3)))


def test_a_finite_step_updates_the_model():
    method = Toy()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    losses, finite = train_step(method, _batch(), optimizer, step_generator(0, 0))
    assert finite and set(losses) == {"total"}
    after = method.state_dict()
    assert not torch.equal(after["net.0.weight"], before["net.0.weight"])
    assert not torch.equal(after["net.1.running_mean"], before["net.1.running_mean"])


def test_a_non_finite_step_leaves_no_trace():
    method = Toy()
    method.scale = float("nan")
    before = {k: v.clone() for k, v in method.state_dict().items()}
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1, momentum=0.9)
    losses, finite = train_step(method, _batch(), optimizer, step_generator(0, 0))
    assert not finite and torch.isnan(losses["total"])
    for key, value in method.state_dict().items():  # weights and BatchNorm statistics alike
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in method.parameters()) and not optimizer.state


def test_gradients_are_clipped():
    method = Toy()
    method.scale = 1e6
    optimizer = torch.optim.SGD(method.parameters(), lr=0.0)
    train_step(method, _batch(), optimizer, step_generator(0, 0), grad_clip=0.5)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in method.parameters()]))
    assert float(norm) == pytest.approx(0.5, rel=1e-4)


def test_amp_runs_the_forward_pass_in_bfloat16():
    method = Toy()
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    train_step(method, _batch(), optimizer, step_generator(0, 0))
    train_step(method, _batch(), optimizer, step_generator(0, 1), amp=True)
    assert method.dtypes[0] == torch.float32 and method.dtypes[1] != torch.float32


def test_each_step_starts_from_fresh_gradients():
    """The gradients of a step are that step's alone, not accumulated over the previous steps."""
    method = Toy()
    optimizer = torch.optim.SGD(method.parameters(), lr=0.0)  # the model stays the same: same gradients
    train_step(method, _batch(), optimizer, step_generator(0, 0))
    first = [p.grad.clone() for p in method.parameters()]
    train_step(method, _batch(), optimizer, step_generator(0, 0))
    for grad, p in zip(first, method.parameters()):
        torch.testing.assert_close(p.grad, grad)


def test_the_update_uses_the_clipped_gradients():
    """Clipping comes before the optimiser's step: with plain SGD at lr 1 the weights move by exactly the clipped
    norm, not by the huge raw gradient."""
    method = Toy()
    method.scale = 1e6
    before = [p.detach().clone() for p in method.parameters()]
    optimizer = torch.optim.SGD(method.parameters(), lr=1.0)
    train_step(method, _batch(), optimizer, step_generator(0, 0), grad_clip=0.5)
    with torch.no_grad():
        moved = torch.linalg.vector_norm(
            torch.stack([(p - b).norm() for p, b in zip(method.parameters(), before)])
        )
    assert float(moved) == pytest.approx(0.5, rel=1e-4)
