"""training/phases.py: where a run's phases (the method's steps, each self-training round) start."""

from __future__ import annotations

from partdiscovery.training.phases import method_steps, phase_segments, phase_start_of, phase_starts


def test_phases_cut_the_steps_where_self_training_starts(tiny_config):
    cfg = tiny_config("train.steps=6", "train.self_train_steps=2")
    assert phase_starts(cfg) == [0, 4] and phase_starts(tiny_config("train.steps=6")) == [0]
    assert phase_segments(cfg, 0, 6) == [(0, 4), (4, 6)]
    assert phase_segments(cfg, 4, 6) == [(4, 6)]  # a resume at the phase's first step
    assert phase_segments(cfg, 2, 5) == [(2, 4), (4, 5)]  # resumed, and stopped early (stop_at)
    assert phase_segments(cfg, 5, 6) == [(5, 6)]
    assert method_steps(cfg) == 4 and method_steps(tiny_config("train.steps=6")) == 6


def test_each_round_of_self_training_is_a_phase(tiny_config):
    cfg = tiny_config("train.steps=10", "train.self_train_steps=4", "train.self_train_rounds=2")
    assert phase_starts(cfg) == [0, 6, 8]
    assert phase_segments(cfg, 5, 10) == [(5, 6), (6, 8), (8, 10)]
    assert [phase_start_of(cfg, step) for step in range(10)] == [0] * 6 + [6, 6, 8, 8]
    # Rounds that do not divide the steps: the earlier rounds are the shorter ones.
    uneven = tiny_config("train.steps=10", "train.self_train_steps=5", "train.self_train_rounds=3")
    assert phase_starts(uneven) == [0, 5, 6, 8]
    assert phase_segments(uneven, 4, 10) == [(4, 5), (5, 6), (6, 8), (8, 10)]
    assert [phase_start_of(uneven, step) for step in range(4, 10)] == [0, 5, 6, 6, 8, 8]
    # Without self-training the rounds change nothing.
    assert phase_starts(tiny_config("train.steps=10", "train.self_train_rounds=3")) == [0]
