"""Training: methods (what is optimised), one step, and the generic trainer (how)."""

from partdiscovery.training.checks import check_config
from partdiscovery.training.methods import (
    METHODS,
    SCOPS,
    ContrastiveReconstruction,
    FrozenFeaturesMethod,
    Method,
    create_method,
    list_methods,
)
from partdiscovery.training.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    list_optimizers,
    list_schedules,
)
from partdiscovery.training.step import step_generator, train_step
from partdiscovery.training.trainer import Trainer

__all__ = [
    "METHODS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SCOPS",
    "ContrastiveReconstruction",
    "FrozenFeaturesMethod",
    "Method",
    "Trainer",
    "build_optimizer",
    "build_schedule",
    "check_config",
    "create_method",
    "list_methods",
    "list_optimizers",
    "list_schedules",
    "step_generator",
    "train_step",
]
