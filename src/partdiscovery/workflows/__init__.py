"""The application layer: what a run of the tool *does*, as plain functions with typed arguments.

The command line (:mod:`partdiscovery.cli`) parses flags and prints; the benchmarks and a user's own code
call these functions directly. Each workflow checks its inputs and outputs before any slow work
(:mod:`partdiscovery.utils.outputs`) and raises :class:`~partdiscovery.errors.PartDiscoveryError` for
what the user has to fix.

- :func:`run_training`: a dataset or a plain image folder (masks computed when missing) -> a run folder.
- :func:`evaluate`: a run, model file or predictions folder -> metrics, under a dataset's protocol.
- :func:`run_baseline`: k-means, DFF (fitted on φ) or SCOPS (trained) -> a predictions folder;
  :func:`list_baselines` names them.
- :func:`predict_folder`: a model + a folder of images -> label maps and overlays.
- :func:`make_masks`: a folder of images -> foreground masks, without labels.
- :func:`write_report`: a run (+ a dataset) -> one self-contained HTML page.
- :func:`run_demo`: synthetic data -> train -> evaluate against k-means -> overlays.
"""

from partdiscovery.workflows.baseline import (
    TRAINED_BASELINES,
    BaselineJob,
    BaselineKind,
    baseline_kind,
    is_trained_baseline,
    list_baselines,
    run_baseline,
)
from partdiscovery.workflows.demo import run_demo
from partdiscovery.workflows.evaluate import evaluate
from partdiscovery.workflows.masks import make_masks
from partdiscovery.workflows.predict import predict_folder, prediction_folder
from partdiscovery.workflows.report import write_report
from partdiscovery.workflows.train import run_training, training_dataset

__all__ = [
    "TRAINED_BASELINES",
    "BaselineJob",
    "BaselineKind",
    "baseline_kind",
    "evaluate",
    "is_trained_baseline",
    "list_baselines",
    "make_masks",
    "predict_folder",
    "prediction_folder",
    "run_baseline",
    "run_demo",
    "run_training",
    "training_dataset",
    "write_report",
]
