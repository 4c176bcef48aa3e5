"""One optimisation step, shared by the trainer and the benchmarks (which time exactly what training runs).

Randomness: every random choice inside a step (jitter, warp, contrastive draws) comes from
:func:`step_generator`, a pure function of (seed, step), so a resumed run draws exactly what an
uninterrupted one would, with no RNG state to save.
"""

from __future__ import annotations

import torch

from partdiscovery.training.methods.base import Method
from partdiscovery.utils.distributed import Shard, mean_across
from partdiscovery.utils.seed import torch_generator

STEP_STREAM = 3
"""The in-step random stream of :func:`~partdiscovery.utils.seed.derive_seed`: ``(seed, 3, step)``.
Streams 1 and 2 are the data order and the per-sample crops
(:class:`~partdiscovery.data.transforms.StepBatchSampler`)."""


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of every random choice of step ``step`` (0-based) of a run seeded ``seed``."""
    return torch_generator(seed, STEP_STREAM, step)


def train_step(
    method: Method,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    *,
    grad_clip: float = 0.0,
    amp: bool = False,
    shard: Shard | None = None,
) -> tuple[dict[str, torch.Tensor], bool]:
    """Losses, backward pass, gradient clipping and optimiser update of one batch.

    Args:
        method: see :class:`~partdiscovery.training.methods.Method`.
        batch: the step's batch, already on the method's device (``image [B, 3, S, S]``,
            ``fg_mask [B, 1, S, S]``, optionally ``features``).
        optimizer: over ``method.param_groups``; the learning-rate schedule is the caller's.
        generator: every random choice of the step (:func:`step_generator`).
        grad_clip: clip the global gradient norm at this value (0: no clipping).
        amp: run the forward pass and losses under bfloat16 autocast.
        shard: this process's slice of the global batch in a distributed run (else None).

    Returns:
        ``(losses, finite)``: the method's named losses (``total`` included) and whether the step was
        taken. A non-finite total (on any process) skips the update and leaves no trace: the forward
        pass already updated the BatchNorm running statistics, so they are restored.
    """
    # A copy of the buffers to restore if the step must be skipped.
    buffers = [b.detach().clone() for b in method.buffers()]
    device = batch["image"].device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        losses = method.training_step(batch, generator, shard)
    total = losses["total"]
    finite = bool(torch.isfinite(total))
    if shard is not None:  # every process must take the same decision
        finite = mean_across({"finite": float(finite)}, device)["finite"] == 1.0
    optimizer.zero_grad(set_to_none=True)
    if not finite:
        with torch.no_grad():
            for buf, saved in zip(method.buffers(), buffers):
                buf.copy_(saved)
        return losses, False
    total.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(method.parameters(), grad_clip)
    optimizer.step()
    return losses, True
