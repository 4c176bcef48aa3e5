"""Reading models exported by :mod:`partdiscovery.export`: their config, their weights, and ONNX Runtime.

The three formats carry the model's resolved config as JSON (see :mod:`partdiscovery.export` for the
layouts): a ``.safetensors`` file in its metadata, an ``.onnx`` model in its ``metadata_props``, a
TorchScript file in its extra file ``config.json``. The names below are shared by the writer
(:mod:`partdiscovery.export`) and this reader, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from partdiscovery.config import Config, config_from_dict
from partdiscovery.errors import CheckpointError, ConfigError
from partdiscovery.models import PartOutput

EXPORT_FORMAT = "partdiscovery"
"""The ``format`` metadata entry that tells an export of ours from any other file of the same format."""
EXPORT_FORMAT_VERSION = "1"
CONFIG_KEY = "config"
TORCHSCRIPT_CONFIG_FILE = "config.json"
SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx"}
"""Extensions the model-file loader (:func:`~partdiscovery.runs.model_file.read_model_file`) dispatches on:
an export must not carry another format's extension, or it could never be loaded back."""


def sniff_export(path: Path) -> str | None:
    """``"safetensors"`` or ``"onnx"`` when a file's first bytes are those of one (an export renamed or saved
    without its suffix), else None (a checkpoint, or no readable file).

    safetensors: an 8-byte little-endian header length that fits in the file, then the JSON header's ``{``; ONNX
    (a protobuf ``ModelProto``): field 1, ``ir_version``, a varint (byte 0x08) with a small value."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
        size = path.stat().st_size
    except OSError:
        return None
    if len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size:
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 20:
        return "onnx"
    return None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:160] if str(error) else ""


def load_safetensors(path: str | Path) -> tuple[Config, dict[str, torch.Tensor]]:
    """Read an exported ``.safetensors`` file -> ``(config, state dict of f)``.

    Raises :class:`CheckpointError` for a missing, corrupt or foreign (not a partdiscovery export) file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != EXPORT_FORMAT or CONFIG_KEY not in metadata:
                raise CheckpointError(
                    f"{path}: not a partdiscovery export (its safetensors metadata has no "
                    "format=partdiscovery and config entries); export one with "
                    "`partdiscovery export RUN --format safetensors`"
                )
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises SafetensorError, OSError, ... for a damaged file
        raise CheckpointError(
            f"{path}: exported model is corrupt or not a safetensors file "
            f"({type(e).__name__}: {_first_line(e)})"
        ) from None
    try:
        cfg = config_from_dict(json.loads(metadata[CONFIG_KEY]))
    except (json.JSONDecodeError, ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None
    return cfg, state


def exported_config(path: str | Path) -> Config:
    """The config stored in an exported file of any of the three formats (by its extension:
    ``.safetensors``, ``.onnx``, anything else is read as TorchScript)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model does not exist")
    try:
        if path.suffix.lower() == ".safetensors":
            return load_safetensors(path)[0]
        if path.suffix.lower() == ".onnx":
            import onnx

            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
            text = props[CONFIG_KEY]
        else:
            extra = {TORCHSCRIPT_CONFIG_FILE: ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
                torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            text = extra[TORCHSCRIPT_CONFIG_FILE]
        return config_from_dict(json.loads(text))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"{path}: not a partdiscovery export or corrupt ({type(e).__name__}: {_first_line(e)})"
        ) from None


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a model exported by partdiscovery (any format): only such a file is replaced
    by ``export --overwrite``."""
    try:
        exported_config(path)
    except CheckpointError:
        return False
    return True


class OnnxRuntimeNet:
    """An exported ONNX model behind the interface :class:`~partdiscovery.segmenter.PartSegmenter` uses
    (``net(images) -> PartOutput``), run by ONNX Runtime: about 3x the throughput of PyTorch eager on
    CPU for the cpu-preset network (BENCHMARKS.md)."""

    def __init__(self, path: str | Path, cfg: Config, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.learned_background = cfg.model.learned_background

    def to(self, *args, **kwargs) -> OnnxRuntimeNet:  # runs on the CPU provider
        return self

    def eval(self) -> OnnxRuntimeNet:
        return self

    def __call__(self, images: torch.Tensor) -> PartOutput:
        (logits,) = self.session.run(["logits"], {"images": images.detach().cpu().float().numpy()})
        logits = torch.from_numpy(logits)
        if self.learned_background:
            return PartOutput(logits[:, 1:], logits[:, :1])
        return PartOutput(logits)
