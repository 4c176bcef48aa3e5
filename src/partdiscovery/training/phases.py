"""A run's phases: the method's steps, then, with ``train.self_train_steps``, ``train.self_train_rounds`` rounds of
self-training that share those steps (the earlier rounds get the shorter share when they do not divide evenly).

Each phase has its own optimiser moments (the trainer clears them where a phase starts), its own learning-rate
schedule started anew (:func:`~partdiscovery.training.optim.build_schedule`) and its own per-image maps
(``method.feature_cache``: a self-training round's targets are the parts of f as it was at the round's first step).
The trainer, the schedule and the method all read the boundaries from here.
"""

from __future__ import annotations

from partdiscovery.config import Config


def phase_starts(cfg: Config) -> list[int]:
    """The first step of each phase: ``[0]``; with self-training ``[0, s, ...]``, one start per round, the first at
    ``s = steps - self_train_steps``."""
    steps, tail, rounds = cfg.train.steps, cfg.train.self_train_steps, cfg.train.self_train_rounds
    if not 0 < tail < steps:
        return [0]
    first = steps - tail
    return [0, *(first + r * tail // rounds for r in range(rounds))]


def method_steps(cfg: Config) -> int:
    """The steps of the method itself, before any self-training: where the restarts compare their runs and how long
    SCOPS, which does not self-train, trains."""
    return phase_starts(cfg)[1] if len(phase_starts(cfg)) > 1 else cfg.train.steps


def phase_start_of(cfg: Config, step: int) -> int:
    """The first step of the phase that ``step`` belongs to."""
    return max(start for start in phase_starts(cfg) if start <= step)


def phase_segments(cfg: Config, start: int, end: int) -> list[tuple[int, int]]:
    """Steps ``start..end-1`` cut where a phase starts: ``[(first, stop), ...]``, none empty."""
    cuts = [*phase_starts(cfg), cfg.train.steps]
    pieces = [(max(start, a), min(end, b)) for a, b in zip(cuts, cuts[1:])]
    return [(a, b) for a, b in pieces if a < b]


__all__ = ["method_steps", "phase_segments", "phase_start_of", "phase_starts"]
