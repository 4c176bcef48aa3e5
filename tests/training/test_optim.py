"""Optimisers and schedules by name; the config accepts exactly the registered names."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from partdiscovery.config import load_config
from partdiscovery.errors import ConfigError
from partdiscovery.training.optim import (
    OPTIMIZERS,
    build_optimizer,
    build_schedule,
    list_optimizers,
    list_schedules,
)


class TwoGroups(nn.Module):
    """The part of a method the optimiser sees: parameter groups with their own learning rates."""

    def __init__(self):
        super().__init__()
        self.backbone, self.head = nn.Linear(2, 2), nn.Linear(2, 2)

    def param_groups(self, optim):
        return [
            {"params": self.backbone.parameters(), "lr": optim.backbone_lr, "name": "backbone"},
            {"params": self.head.parameters(), "lr": optim.lr, "name": "head"},
        ]


def test_registered_names():
    assert list_optimizers() == ["adam", "sgd"]
    assert list_schedules() == ["constant", "poly"]


@pytest.mark.parametrize(("name", "cls"), [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_optimizers_keep_the_group_learning_rates(name, cls):
    cfg = load_config(
        "cpu",
        overrides=[
            f"optim.optimizer={name}",
            "optim.lr=0.5",
            "optim.backbone_lr=0.25",
            "optim.weight_decay=0.01",
        ],
    )
    optimizer = build_optimizer(TwoGroups(), cfg)
    assert type(optimizer) is cls
    assert [g["lr"] for g in optimizer.param_groups] == [0.25, 0.5]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.01]  # the paper preset's 5e-4
    if name == "sgd":
        assert optimizer.defaults["momentum"] == cfg.optim.momentum


def head_rates(optimizer, schedule, steps: int) -> list[float]:
    """The head's learning rate at each of ``steps`` steps (the schedule moves on after each)."""
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[-1]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_schedules():
    cfg = load_config(
        "cpu", overrides=["train.steps=4", "optim.poly_power=2.0", "optim.lr=1.0", "optim.backbone_lr=1.0"]
    )
    # Power 2, not 1: with power 1 a schedule that ignored poly_power would pass.
    for name, expected in (("poly", [1.0, 0.5625, 0.25, 0.0625, 0.0]), ("constant", [1.0] * 5)):
        run = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, schedule=name))
        optimizer = build_optimizer(TwoGroups(), run)
        assert head_rates(optimizer, build_schedule(optimizer, run), 5) == pytest.approx(expected), name


def test_a_registered_optimizer_is_a_valid_config_value(monkeypatch):
    monkeypatch.setitem(
        OPTIMIZERS._entries, "adamw", lambda groups, optim: torch.optim.AdamW(groups, lr=optim.lr)
    )
    cfg = load_config("cpu", overrides=["optim.optimizer=adamw"])
    assert type(build_optimizer(TwoGroups(), cfg)) is torch.optim.AdamW


def test_build_optimizer_refuses_an_unchecked_unknown_name():
    cfg = load_config("cpu")
    unchecked = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, optimizer="adamw"))
    with pytest.raises(ConfigError, match="unknown optim.optimizer 'adamw'; choose one of: adam, sgd"):
        build_optimizer(TwoGroups(), unchecked)


def test_self_training_starts_the_schedule_anew_over_its_steps():
    """``train.self_train_steps``: the schedule runs over the method's steps, then from the start over the rest."""
    cfg = load_config(
        "cpu",
        overrides=["train.steps=5", "train.self_train_steps=2", "optim.poly_power=2.0", "optim.lr=1.0"],
    )
    optimizer = build_optimizer(TwoGroups(), cfg)
    schedule = build_schedule(optimizer, cfg)
    assert head_rates(optimizer, schedule, 5) == pytest.approx([1.0, (2 / 3) ** 2, (1 / 3) ** 2, 1.0, 0.25])
    restored = build_schedule(build_optimizer(TwoGroups(), cfg), cfg)
    restored.load_state_dict(schedule.state_dict())  # what a checkpoint holds
    assert restored.last_epoch == schedule.last_epoch == 5


def test_each_round_of_self_training_starts_the_schedule_anew():
    cfg = load_config(
        "cpu",
        overrides=[
            "train.steps=7",
            "train.self_train_steps=4",
            "train.self_train_rounds=2",
            "optim.poly_power=1.0",
            "optim.lr=1.0",
        ],
    )
    optimizer = build_optimizer(TwoGroups(), cfg)
    schedule = build_schedule(optimizer, cfg)
    assert head_rates(optimizer, schedule, 7) == pytest.approx([1.0, 2 / 3, 1 / 3, 1.0, 0.5, 1.0, 0.5])
