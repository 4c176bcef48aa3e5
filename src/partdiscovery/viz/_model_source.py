"""Which model and which config a run folder holds, as the report needs to know them.

Kept apart from :mod:`partdiscovery.viz.report` on purpose: these three functions answer questions about
run folders, checkpoints and exports (the training and export layers' business, imported lazily here),
not about pictures. A shared run loader is meant to replace them; the report imports them by these names
and signatures only, so the swap is one import line.
"""

from __future__ import annotations

from pathlib import Path

from partdiscovery.errors import CheckpointError, PartDiscoveryError

RUN_FILES = ("config.yaml", "metrics.csv", "train_summary.json", "run_info.json")


def _is_our_run(folder: Path) -> bool:
    """A run folder of ours (marked, or from before markers), where the default report may be written."""
    from partdiscovery.training.checkpoint import list_checkpoints
    from partdiscovery.training.trainer import RunFolder

    return RunFolder(folder).output.is_ours() or bool(list_checkpoints(folder))


def _resolve(run: Path) -> tuple[Path, Path]:
    """``run`` (a run folder, or a checkpoint / exported file) -> (folder of the run's files, model)."""
    from partdiscovery.training.checkpoint import list_checkpoints

    if run.is_dir():
        if not list_checkpoints(run) and not any((run / name).is_file() for name in RUN_FILES):
            raise PartDiscoveryError(
                f"{run}: not a run folder (no checkpoints/ and none of {', '.join(RUN_FILES)}); "
                "give the --out folder of a training run"
            )
        return run, run
    if run.is_file():
        folder = run.parent.parent if run.parent.name == "checkpoints" else run.parent
        return folder, run
    raise PartDiscoveryError(f"{run}: no such run folder, checkpoint or exported model")


def _config_text(folder: Path, source: Path, segmenter) -> str | None:
    """The model's config as YAML: the loaded model's, else the run's config.yaml, else the checkpoint's."""
    if segmenter is not None:
        return segmenter.cfg.to_yaml()
    if (folder / "config.yaml").is_file():
        return (folder / "config.yaml").read_text(encoding="utf-8")
    from partdiscovery.training.checkpoint import checkpoint_config, load_checkpoint, load_latest

    try:
        if source.suffix == ".safetensors":
            from partdiscovery.export import load_safetensors

            return load_safetensors(source)[0].to_yaml()
        path, payload = load_latest(source) if source.is_dir() else (source, load_checkpoint(source))
        return checkpoint_config(payload, path).to_yaml()
    except CheckpointError:
        return None
