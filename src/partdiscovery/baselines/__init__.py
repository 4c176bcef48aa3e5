"""Training-free baselines scored by the same evaluation as the method: k-means and DFF on φ features.

(SCOPS is trainable and lives with the methods: ``method=scops``.) Each baseline is a pair
``fit(phi, train_set, num_parts, input_size, seed=..., progress=...)`` /
``predict(phi, model, test_set, input_size, progress=...) -> Iterator[Prediction]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from partdiscovery.baselines.dff import DFFModel, fit_dff, predict_dff
from partdiscovery.baselines.kmeans import fit_kmeans, predict_kmeans
from partdiscovery.utils.registry import Registry


@dataclass(frozen=True)
class Baseline:
    fit: Callable
    predict: Callable
    normalize_features: bool
    """φ's per-layer L2 normalisation; DFF's NMF needs the raw activations."""


BASELINES: Registry[Baseline] = Registry("baseline")
BASELINES.register("kmeans")(lambda: Baseline(fit_kmeans, predict_kmeans, normalize_features=True))
BASELINES.register("dff")(lambda: Baseline(fit_dff, predict_dff, normalize_features=False))


def list_baselines() -> list[str]:
    return BASELINES.names()


__all__ = [
    "BASELINES",
    "Baseline",
    "DFFModel",
    "fit_dff",
    "fit_kmeans",
    "list_baselines",
    "predict_dff",
    "predict_kmeans",
]
