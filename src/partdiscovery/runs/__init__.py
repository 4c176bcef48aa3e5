"""Runs and model files: what training writes and what inference reads back.

- :mod:`~partdiscovery.runs.folder`: a run folder's file names and the rules for writing them;
- :mod:`~partdiscovery.runs.checkpoint`: atomic, self-describing checkpoints;
- :mod:`~partdiscovery.runs.exported`: reading exported models (safetensors, ONNX, TorchScript);
- :mod:`~partdiscovery.runs.model_file`: one loader for every kind of model source.

This package never imports :mod:`partdiscovery.training` (heavy, and not needed for inference).
"""

from partdiscovery.runs.checkpoint import (
    CHECKPOINT_DIR,
    checkpoint_config,
    checkpoint_path,
    git_sha,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    prune_checkpoints,
    save_checkpoint,
)
from partdiscovery.runs.exported import OnnxRuntimeNet, exported_config, is_export, load_safetensors
from partdiscovery.runs.folder import (
    CONFIG_FILE,
    METRICS_FILE,
    REPORT_FILE,
    REPORT_GENERATOR,
    REQUEST_FILE,
    RUN_FILES,
    RUN_INFO_FILE,
    SUMMARY_FILE,
    TENSORBOARD_DIR,
    RunFolder,
    is_metrics_json,
    is_report,
)
from partdiscovery.runs.model_file import (
    ModelFile,
    build_net,
    config_text,
    model_config,
    read_model_file,
    resolve_run,
)

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "METRICS_FILE",
    "REPORT_FILE",
    "REPORT_GENERATOR",
    "REQUEST_FILE",
    "RUN_FILES",
    "RUN_INFO_FILE",
    "SUMMARY_FILE",
    "TENSORBOARD_DIR",
    "ModelFile",
    "OnnxRuntimeNet",
    "RunFolder",
    "build_net",
    "checkpoint_config",
    "checkpoint_path",
    "config_text",
    "exported_config",
    "git_sha",
    "is_export",
    "is_metrics_json",
    "is_report",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest",
    "load_safetensors",
    "model_config",
    "prune_checkpoints",
    "read_model_file",
    "resolve_run",
    "save_checkpoint",
]
