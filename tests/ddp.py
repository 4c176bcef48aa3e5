"""Run a function in several gloo processes on CPU, as ``torchrun`` would start them (for the DDP tests)."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable

import torch.multiprocessing as mp


def spawn(fn: Callable, world: int, *args) -> None:
    """``fn(rank, *args)`` in ``world`` processes with torchrun's environment; raises if any process fails.
    ``fn`` must be a module-level function (it is pickled into the children)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_entry, args=(world, port, fn, args), nprocs=world, join=True)


def _entry(rank: int, world: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    warnings.simplefilter("ignore")
    try:
        fn(rank, *args)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
