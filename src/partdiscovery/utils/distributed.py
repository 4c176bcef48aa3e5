"""Distributed training on PyTorch's own engine (``torchrun`` + DistributedDataParallel).

``torchrun --nproc_per_node N -m partdiscovery train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`setup` joins the process group (NCCL on CUDA, gloo on CPU). Each process takes an equal
slice of the *global* batch of every step, and every random draw of a step (crops, jitter, warps,
contrastive positives) is made for the global batch and sliced, so N processes compute exactly
what one process computes on the whole batch. The contrastive loss gathers the part prototypes of
all processes (with gradients), so positives and negatives come from the global batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's slice ``[offset, offset + size)`` of a global batch of ``total`` images."""

    offset: int
    size: int
    total: int

    @property
    def is_whole(self) -> bool:
        return self.size == self.total


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: int) -> Shard:
        """This process's equal slice of a global batch (the trainer refuses batches that do not divide)."""
        if global_batch % self.world_size:
            raise ValueError(f"a batch of {global_batch} does not split over {self.world_size} processes")
        size = global_batch // self.world_size
        return Shard(self.rank * size, size, global_batch)


def env_info() -> DistInfo:
    """The torchrun environment (single process when absent)."""
    return DistInfo(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


T = TypeVar("T")

# Training's collectives (gradients, logged means, checkpoint barriers) take seconds: a process that has not
# joined one within COLLECTIVE_TIMEOUT has hung or died, and the others stop with an error instead of waiting.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)
# Waits for work only the main process does (the automatic masks: minutes per thousand images; the restarts'
# choice) go through a gloo group of their own with a longer timeout (:func:`main_first`, ``slow=True``).
WAIT_TIMEOUT = timedelta(hours=6)
_wait_group: dist.ProcessGroup | None = None


def setup(device: torch.device) -> DistInfo:
    """Join the process group of a ``torchrun`` launch (no-op otherwise, or when already joined); on CUDA each
    process takes GPU ``LOCAL_RANK`` as its current device, which NCCL's collectives use. Also makes the group
    in which the others wait for the main process's own work (``WAIT_TIMEOUT``)."""
    global _wait_group
    info = env_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        _wait_group = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT)
    return info


def process_device(device: torch.device) -> torch.device:
    """This process's device: GPU ``LOCAL_RANK`` on CUDA under ``torchrun``, else ``device``."""
    info = env_info()
    return torch.device("cuda", info.local_rank) if info.enabled and device.type == "cuda" else device


def main_first(make: Callable[[], T]) -> T:
    """``make()`` on the main process, then on the others once it has finished; every process gets the main
    process's result.

    For files that every process needs and one should compute, e.g. the automatic masks: the others run
    ``make`` after the main one, so they find its files and reuse them (on a shared file system), or make their
    own (on a node that does not see the main one's disk). Not distributed: ``make()``."""
    info = env_info()
    if not (info.enabled and dist.is_available() and dist.is_initialized()):
        return make()
    result = broadcast_object(make() if info.is_main else None, slow=True)  # the others wait here
    if not info.is_main:
        make()
    barrier(slow=True)  # the main process waits for the others' turn (long where they cannot reuse its files)
    return result


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0; gradients flow back to each owner."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def mean_across(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average logged scalars over processes (for logs only; gradients are DDP's business)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    keys = list(values)  # same insertion order on every process
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def broadcast_tensors(tensors) -> None:
    """Overwrite each tensor with the main process's, in place (nothing when not distributed): e.g. a copy of f
    whose BatchNorm statistics each process updated on its own batches."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def barrier(slow: bool = False) -> None:
    """Wait for every process; ``slow``: some may be busy with work of their own for up to ``WAIT_TIMEOUT``."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier(group=_wait_group if slow else None)


def broadcast_object(obj, slow: bool = False):
    """The main process's ``obj`` on every process (``obj`` itself when not distributed): e.g. a choice
    only the main process computed. ``slow``: the main process may still be computing it (the restarts' choice,
    the masks) for up to ``WAIT_TIMEOUT``, longer than training's collectives may take."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_wait_group if slow else None)
    return box[0]
