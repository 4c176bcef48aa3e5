"""utils/seed.py: randomness as a pure function of (seed, step, sample)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from partdiscovery.utils.seed import derive_seed, seed_everything, seeded, torch_generator


def test_derive_seed_is_a_pure_well_spread_function_of_its_parts():
    assert derive_seed(0, 5) == derive_seed(0, 5)
    seeds = {derive_seed(0, step) for step in range(1000)} | {derive_seed(1, step) for step in range(1000)}
    assert len(seeds) == 2000 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(-1) == derive_seed(2**64 - 1)  # parts are taken modulo 2**64


def test_derive_seed_uses_all_63_bits():
    """Seeds of 32 bits would collide between (seed, step, sample) triples of a long run (birthday bound)."""
    seeds = [derive_seed(0, step) for step in range(100)]
    assert all(0 <= seed < 2**63 for seed in seeds)  # a valid torch / numpy seed
    assert max(seed.bit_length() for seed in seeds) == 63  # the top bit of 100 draws: all 0 with p = 2**-100


def test_torch_generator_is_seeded_with_derive_seed():
    assert torch_generator(3, 7).initial_seed() == derive_seed(3, 7)


def test_torch_generator_streams_repeat_and_differ():
    a = torch.rand(4, generator=torch_generator(3, 7))
    assert torch.equal(a, torch.rand(4, generator=torch_generator(3, 7)))
    assert not torch.equal(a, torch.rand(4, generator=torch_generator(3, 8)))


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(11, deterministic=False)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(11, deterministic=False)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_seed_everything_takes_a_derived_63_bit_seed():
    """NumPy's legacy seed takes 32 bits only: the seed is reduced for it, and used whole elsewhere."""
    seed = derive_seed(1, 2)
    seed_everything(seed, deterministic=False)
    assert torch.initial_seed() == seed
    assert np.random.rand() == np.random.RandomState(seed % 2**32).rand()


def test_seed_everything_makes_kernels_deterministic_with_a_warning_only_when_asked(monkeypatch):
    """Recorded, not applied: the setting is global to the process (and its first use takes seconds)."""
    calls = []

    def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
        calls.append((mode, warn_only))

    monkeypatch.setattr(torch, "use_deterministic_algorithms", use_deterministic_algorithms)
    seed_everything(11, deterministic=False)
    assert calls == []
    seed_everything(11)
    assert calls == [(True, True)]  # a CUDA kernel without a deterministic version warns rather than fails


def _mode() -> tuple[bool, bool]:
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


def test_seeded_turns_the_mode_on_for_its_block_and_restores_it(deterministic_mode_off):
    """A program that calls a workflow keeps its own mode after the call (the mode is global to the process)."""
    with seeded(11):
        assert _mode() == (True, True)
        inside = torch.rand(1).item()
    assert _mode() == (False, False)
    seed_everything(11, deterministic=False)
    assert torch.rand(1).item() == inside  # seeded as seed_everything seeds
    torch.use_deterministic_algorithms(
        True
    )  # a caller's strict mode (errors, not warnings) is given back too
    with seeded(11):
        assert _mode() == (True, True)
    assert _mode() == (True, False)
    torch.use_deterministic_algorithms(False)
    with pytest.raises(RuntimeError, match="inside"), seeded(11):
        raise RuntimeError("inside")
    assert _mode() == (False, False)  # restored when the block fails too
    with seeded(11, deterministic=False):
        assert _mode() == (False, False)
