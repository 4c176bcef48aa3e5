"""What is this model file? One answer for every place that loads a trained model.

A model is given as a run folder (its newest good checkpoint), a checkpoint ``.pt``, an exported
``.safetensors`` or an exported ``.onnx``. :func:`read_model_file` reads any of them into a
:class:`ModelFile` (config + weights, or an ONNX Runtime session, + the file read);
:class:`~partdiscovery.segmenter.PartSegmenter`, :mod:`partdiscovery.export` and the report all load
through it, so they accept the same sources and give the same errors.
"""

from __future__ import annotations

import dataclasses
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from partdiscovery.config import Config
from partdiscovery.errors import CheckpointError, PartDiscoveryError
from partdiscovery.models import PartSegmentationNet
from partdiscovery.runs.checkpoint import (
    CHECKPOINT_DIR,
    checkpoint_config,
    list_checkpoints,
    load_checkpoint,
    load_latest,
)
from partdiscovery.runs.exported import OnnxRuntimeNet, exported_config, load_safetensors, sniff_export
from partdiscovery.runs.folder import CONFIG_FILE, RUN_FILES

NET_PREFIX = "net."
"""A method's state dict holds f under ``net.``; exports hold f's own keys."""


@dataclass
class ModelFile:
    """A trained model as read from disk.

    Attributes:
        cfg: the model's resolved config.
        source: the file read (for a run folder: its newest good checkpoint).
        kind: ``"checkpoint"``, ``"safetensors"`` or ``"onnx"``.
        state: f's state dict (its own keys, no ``net.`` prefix); None for ONNX.
        runtime: the ONNX Runtime network for ``.onnx`` (else None).
    """

    cfg: Config
    source: Path
    kind: str
    state: dict[str, torch.Tensor] | None = None
    runtime: OnnxRuntimeNet | None = None


def net_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """f's entries of a method's state dict without their ``net.`` prefix (a state dict without any
    ``net.`` key is taken to be f's already)."""
    return {k[len(NET_PREFIX) :]: v for k, v in state.items() if k.startswith(NET_PREFIX)} or state


def _checkpoint(source: Path) -> tuple[Path, dict]:
    if source.is_dir():
        return load_latest(source)
    if source.is_file():
        return source, load_checkpoint(source)
    raise CheckpointError(f"{source}: no such run folder, checkpoint or exported model")


def file_kind(source: Path) -> str:
    """``"onnx"``, ``"safetensors"`` or ``"checkpoint"``: by the suffix, else (a file renamed, or exported without
    one) by its first bytes. A TorchScript export is refused with a :class:`CheckpointError` saying what reads it."""
    if source.suffix.lower() in (".onnx", ".safetensors"):
        return source.suffix[1:].lower()
    if not source.is_file():
        return "checkpoint"
    if sniff_export(source) == "safetensors":
        return "safetensors"
    try:
        with open(source, "rb") as handle:
            head = handle.read(4)
        torchscript = False
        if head[:4] == b"PK\x03\x04":  # torch.save's and torch.jit.save's archives are zip files
            with zipfile.ZipFile(source) as archive:
                torchscript = any(
                    "/code/" in name or name.endswith("/constants.pkl") for name in archive.namelist()
                )
    except (OSError, zipfile.BadZipFile):
        return "checkpoint"  # unreadable or not a zip: the checkpoint reader says what is wrong with it
    if torchscript:
        raise CheckpointError(
            f"{source}: is a TorchScript export, for your own code (torch.jit.load); predict, evaluate, "
            "report and masks --from-run read run folders, checkpoints, .safetensors and .onnx files"
        )
    return "checkpoint"


def read_model_file(source: str | Path) -> ModelFile:
    """Read a run folder, checkpoint ``.pt``, exported ``.safetensors`` or ``.onnx`` (which needs
    ``onnxruntime``). Raises :class:`CheckpointError` for a missing, corrupt or foreign source."""
    source = Path(source)
    kind = file_kind(source)
    if kind == "onnx":
        cfg = exported_config(source)
        return ModelFile(cfg, source, "onnx", runtime=OnnxRuntimeNet(source, cfg))
    if kind == "safetensors":
        cfg, state = load_safetensors(source)
        return ModelFile(cfg, source, "safetensors", state=net_state(state))
    path, payload = _checkpoint(source)
    return ModelFile(checkpoint_config(payload, path), path, "checkpoint", state=net_state(payload["model"]))


def model_config(source: str | Path) -> Config:
    """The config of the model in ``source`` (same sources as :func:`read_model_file`); an export's is
    read from its metadata, without loading its weights or ONNX Runtime."""
    source = Path(source)
    kind = file_kind(source)
    if kind == "onnx":
        return exported_config(source)
    if kind == "safetensors":
        return load_safetensors(source)[0]
    path, payload = _checkpoint(source)
    return checkpoint_config(payload, path)


def build_net(cfg: Config, state: dict[str, torch.Tensor], source: str) -> PartSegmentationNet:
    """f built from ``cfg`` (no pretrained download: the weights come from ``state``, f's own keys or a
    method's ``net.*`` keys), loaded strictly: weights that do not fit the config are a
    :class:`CheckpointError` naming ``source``."""
    with warnings.catch_warnings():  # random init is expected: the weights are loaded just below
        warnings.simplefilter("ignore")
        net = PartSegmentationNet(dataclasses.replace(cfg.model, pretrained=False, backbone_weights=None))
    try:
        net.load_state_dict(net_state(state), strict=True)
    except RuntimeError as e:
        # torch's first line only says "Error(s) in loading state_dict for ...": show the first error itself
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise CheckpointError(
            f"{source}: weights do not match the model in its config ({detail[:240]})"
        ) from None
    return net


def resolve_run(run: str | Path) -> tuple[Path, Path]:
    """A run folder, or a checkpoint / exported model inside or beside one -> ``(folder of the run's
    files, model source)``. Raises :class:`PartDiscoveryError` for a folder that is not a run folder and
    a path that does not exist."""
    run = Path(run)
    if run.is_dir():
        if not list_checkpoints(run) and not any((run / name).is_file() for name in RUN_FILES):
            raise PartDiscoveryError(
                f"{run}: not a run folder (no {CHECKPOINT_DIR}/ and none of {', '.join(RUN_FILES)}); "
                "give the --out folder of a training run"
            )
        return run, run
    if run.is_file():
        folder = run.parent.parent if run.parent.name == CHECKPOINT_DIR else run.parent
        return folder, run
    raise PartDiscoveryError(f"{run}: no such run folder, checkpoint or exported model")


def config_text(folder: str | Path, source: str | Path) -> str | None:
    """The model's config as YAML: the run's ``config.yaml``, else the one stored in ``source``; None
    when neither can be read. ``(folder, source)`` as :func:`resolve_run` returns them."""
    path = Path(folder) / CONFIG_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        return model_config(source).to_yaml()
    except CheckpointError:
        return None
