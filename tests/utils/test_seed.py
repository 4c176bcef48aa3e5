"""utils/seed.py: randomness as a pure function of (seed, step, sample)."""

from __future__ import annotations

import random

import numpy as np
import torch

from partdiscovery.utils.seed import derive_seed, seed_everything, torch_generator


def test_derive_seed_is_a_pure_well_spread_function_of_its_parts():
    assert derive_seed(0, 5) == derive_seed(0, 5)
    seeds = {derive_seed(0, step) for step in range(1000)} | {derive_seed(1, step) for step in range(1000)}
    assert len(seeds) == 2000 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(-1) == derive_seed(2**64 - 1)  # parts are taken modulo 2**64


def test_torch_generator_streams_repeat_and_differ():
    a = torch.rand(4, generator=torch_generator(3, 7))
    assert torch.equal(a, torch.rand(4, generator=torch_generator(3, 7)))
    assert not torch.equal(a, torch.rand(4, generator=torch_generator(3, 8)))


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(11, deterministic=False)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11, deterministic=False)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
