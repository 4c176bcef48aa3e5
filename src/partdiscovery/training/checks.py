"""A config checked against the registries before any work: names, and what the names imply.

The config module checks keys, types and ranges, but it is a layer below the registries and cannot know
which names are registered. :func:`check_config` runs where training starts (``train`` and ``baseline scops``
before they write anything, the trainer before its first step), so that a misspelt name, or a φ that a setting
cannot use, is one line before the first step instead of a traceback after the training it spoils.
"""

from __future__ import annotations

from partdiscovery.config import Config
from partdiscovery.errors import ConfigError
from partdiscovery.models import BACKBONES, FEATURE_EXTRACTORS, feature_extractor_layers
from partdiscovery.models.features import check_layer_weights
from partdiscovery.models.refine import part_refiner
from partdiscovery.training.methods import METHODS
from partdiscovery.training.optim import OPTIMIZERS, SCHEDULES
from partdiscovery.utils.registry import config_entry


def check_config(cfg: Config) -> None:
    """Raise :class:`~partdiscovery.errors.ConfigError` for an unregistered method, backbone, φ, optimiser,
    schedule, part refiner or foreground approach (listing the registered names), for
    ``loss.contrastive_layers`` that do not fit φ, for restarts or rounds with a φ that does not declare its
    layers (their choice reads φ's deepest layer, after every candidate has trained), and for self-training
    with a method that does not do it."""
    # The foreground registries only here: they import scikit-learn, scikit-image and SciPy, which importing
    # partdiscovery.training need not pay for.
    from partdiscovery.foreground.cosegment import COARSE
    from partdiscovery.foreground.refine import REFINERS

    config_entry(METHODS, cfg.method, "method")
    config_entry(BACKBONES, cfg.model.backbone, "model.backbone")
    config_entry(FEATURE_EXTRACTORS, cfg.model.feature_extractor, "model.feature_extractor")
    config_entry(OPTIMIZERS, cfg.optim.optimizer, "optim.optimizer")
    config_entry(SCHEDULES, cfg.optim.schedule, "optim.schedule")
    part_refiner(cfg.predict.refine)
    config_entry(COARSE, cfg.foreground.coarse, "foreground.coarse")
    config_entry(REFINERS, cfg.foreground.refine, "foreground.refine")
    if cfg.loss.contrastive_layers is not None:
        check_layer_weights(
            cfg.model.feature_extractor, cfg.loss.contrastive_layers, "loss.contrastive_layers"
        )
    if cfg.train.restarts > 1 or cfg.foreground.rounds > 1:
        feature_extractor_layers(cfg.model.feature_extractor)
    if cfg.train.self_train_steps > 0 and not getattr(METHODS.get(cfg.method), "self_trains", False):
        raise ConfigError(
            f"train.self_train_steps: the {cfg.method} method does not self-train (set it to 0)"
        )
    # Checked before the method's steps, not after them.
    if cfg.train.self_train_steps > 0 and cfg.data.num_workers > 0:
        raise ConfigError(
            "train.self_train_steps needs data.num_workers=0 (the teacher's parts are kept in one process)"
        )


__all__ = ["check_config"]
