"""Seeding. Workflows seed a block with :func:`seeded` (the command line's process ends with the call, a
user's program does not); library code takes generators instead."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # CPU kernels are deterministic already; this makes GPU runs fail loudly instead of drifting.
        torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def seeded(seed: int, deterministic: bool = True) -> Iterator[None]:
    """:func:`seed_everything` for the length of a block, then torch's deterministic-algorithms mode as it was.

    Why: the mode is global to the process. ``partdiscovery train`` ends with its process, but a program that calls
    the workflows (a notebook, a benchmark script) would keep it after the call: on a GPU its own kernels would then
    warn, or run slower. The random number generators are left as the block leaves them, as after any seeding.
    """
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    seed_everything(seed, deterministic)
    try:
        yield
    finally:
        now = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        if now != before:
            torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, e.g. ``derive_seed(run_seed, step)``.

    Why: randomness in training is a pure function of (seed, step, sample), so a resumed run draws
    exactly what an uninterrupted one would, with no RNG state to save, and DataLoader workers agree.
    """
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def torch_generator(*parts: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive_seed(*parts))
    return g
