"""Optimisers and learning-rate schedules, by name (``optim.optimizer``, ``optim.schedule``).

Each entry is a small factory over the method's parameter groups (which carry their own learning
rates, e.g. a 10x head) and :class:`~partdiscovery.config.OptimConfig`; a new entry is a valid config
value at once (:func:`partdiscovery.training.checks.check_config` checks a config's names before any work).
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, SequentialLR

from partdiscovery.config import Config, OptimConfig
from partdiscovery.training.phases import phase_starts
from partdiscovery.utils.moved import moved_names
from partdiscovery.utils.registry import Registry, config_entry

OPTIMIZERS: Registry[Optimizer] = Registry("optim.optimizer")
"""Name -> ``fn(param_groups, optim: OptimConfig) -> Optimizer``."""
SCHEDULES: Registry[LRScheduler] = Registry("optim.schedule")
"""Name -> ``fn(optimizer, optim: OptimConfig, steps: int) -> LRScheduler``, stepped once per step."""


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def list_schedules() -> list[str]:
    return SCHEDULES.names()


@OPTIMIZERS.register("adam")
def adam(groups: list[dict], optim: OptimConfig) -> Optimizer:
    return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict], optim: OptimConfig) -> Optimizer:
    return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)


@SCHEDULES.register("poly")
def poly(optimizer: Optimizer, optim: OptimConfig, steps: int) -> LRScheduler:
    """``lr * (1 - step / steps) ** poly_power``: 0 at the last step (DeepLab's schedule)."""
    power = optim.poly_power
    return LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps) ** power)


@SCHEDULES.register("constant")
def constant(optimizer: Optimizer, optim: OptimConfig, steps: int) -> LRScheduler:
    return LambdaLR(optimizer, lambda s: 1.0)


def build_optimizer(method, cfg: Config) -> Optimizer:
    """The optimiser ``cfg.optim.optimizer`` over ``method.param_groups(cfg.optim)``."""
    return config_entry(OPTIMIZERS, cfg.optim.optimizer, "optim.optimizer")(
        method.param_groups(cfg.optim), cfg.optim
    )


def build_schedule(optimizer: Optimizer, cfg: Config) -> LRScheduler:
    """The schedule ``cfg.optim.schedule`` over ``cfg.train.steps`` steps; with self-training, over each phase
    (:func:`~partdiscovery.training.phases.phase_starts`: the method's steps, then each round), started anew at
    each (torch's ``SequentialLR``)."""
    factory = config_entry(SCHEDULES, cfg.optim.schedule, "optim.schedule")
    starts = phase_starts(cfg)
    ends = [*starts[1:], cfg.train.steps]
    phases = [factory(optimizer, cfg.optim, max(1, end - start)) for start, end in zip(starts, ends)]
    if len(phases) == 1:
        return phases[0]
    return SequentialLR(optimizer, phases, milestones=starts[1:])


# moved in 0.23 (and checks more than names)
__getattr__ = moved_names(__name__, {"check_names": "partdiscovery.training.checks:check_config"})
