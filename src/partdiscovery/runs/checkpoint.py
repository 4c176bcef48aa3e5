"""Checkpoints: atomic, self-describing (config + git SHA inside), loaded with ``weights_only=True``.

A run folder holds ``checkpoints/step_<N>.pt``; the last two are kept so that a checkpoint that
turns out to be corrupt (disk full, kill during a copy) falls back to the previous good one.
"""

from __future__ import annotations

import io
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import torch

from partdiscovery.config import Config, config_from_dict
from partdiscovery.errors import CheckpointError, ConfigError
from partdiscovery.runs.exported import sniff_export
from partdiscovery.utils.io import atomic_write

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d+)\.pt$")
FORMAT_VERSION = 1


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary file + fsync + rename)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buffer)
    return atomic_write(path, lambda fh: fh.write(buffer.getbuffer()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely: ``weights_only=True`` never executes code from the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        exported = sniff_export(path)
        if exported is not None:  # torch's message would speak of pickles and weights_only
            raise CheckpointError(
                f"{path}: is an exported {'ONNX' if exported == 'onnx' else exported} model, not a checkpoint; "
                f"rename it to end in .{exported} to load it"
            ) from None
        raise CheckpointError(
            f"{path}: checkpoint is corrupt, truncated or unsafe to load ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''})"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise CheckpointError(f"{path}: not a partdiscovery checkpoint (no model/config entries)")
    return payload


def checkpoint_config(payload: dict[str, Any], path: str | Path) -> Config:
    try:
        return config_from_dict(payload["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, newest (highest step) first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def load_latest(run_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run that loads; a corrupt newer one is skipped with a warning."""
    candidates = list_checkpoints(run_dir)
    if not candidates:
        folder = Path(run_dir)
        if folder.name == CHECKPOINT_DIR and list_checkpoints(folder.parent):
            raise CheckpointError(
                f"{run_dir}: is the run's checkpoint folder; give the run folder {folder.parent}"
            )
        if not (folder / CHECKPOINT_DIR).is_dir():
            raise CheckpointError(
                f"{run_dir}: is not a run folder (no {CHECKPOINT_DIR}/ in it); give a run folder, a checkpoint "
                "or an exported model"
            )
        raise CheckpointError(f"{run_dir}: no checkpoints found in {folder / CHECKPOINT_DIR}")
    errors = []
    for path in candidates:
        try:
            payload = load_checkpoint(path)
        except CheckpointError as e:
            errors.append(str(e))
            warnings.warn(f"{e}; falling back to an older checkpoint", stacklevel=2)
            continue
        return path, payload
    raise CheckpointError(f"{run_dir}: every checkpoint failed to load: " + "; ".join(errors))


def prune_checkpoints(run_dir: str | Path, keep: int = 2) -> None:
    for path in list_checkpoints(run_dir)[keep:]:
        path.unlink(missing_ok=True)
