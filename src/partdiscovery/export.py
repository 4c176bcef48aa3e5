"""Export a trained segmentation network f for use outside this package.

Three formats, each carrying the model's resolved config so it can be rebuilt or interpreted:

- ``safetensors``: f's state dict (keys as in :class:`~partdiscovery.models.PartSegmentationNet`,
  without the ``net.`` prefix) with metadata ``{"config": <JSON>, "format": "partdiscovery",
  "version": <package version>, "format_version": "1"}``. Loads with no code execution;
  :meth:`PartSegmenter.load <partdiscovery.segmenter.PartSegmenter.load>` reads it directly.
- ``onnx``: images ``[B, 3, S, S]`` float RGB in [0, 1] -> ``logits [B, C, S, S]`` at the config's input
  size ``S`` (dynamic batch axis). ``C = K`` part logits, or ``K + 1`` with a learned background, whose
  channel 0 is the background logit (positive = background) followed by the K part logits. The config
  JSON is in the model's ``metadata_props`` under ``config``.
- ``torchscript``: ``torch.jit.trace`` of the same function; the config JSON is the extra file
  ``config.json`` (``torch.jit.load(path, _extra_files={"config.json": ""})``).

Example:
    >>> export_model("runs/ccp", "safetensors", "ccp.safetensors")
    >>> PartSegmenter.load("ccp.safetensors").predict(image)
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from partdiscovery.config import Config, config_from_dict
from partdiscovery.errors import CheckpointError, ConfigError, PartDiscoveryError
from partdiscovery.utils.io import atomic_write

FORMATS = ("safetensors", "onnx", "torchscript")
EXPORT_FORMAT = "partdiscovery"
EXPORT_FORMAT_VERSION = "1"
ONNX_OPSET = 17
CONFIG_KEY = "config"
TORCHSCRIPT_CONFIG_FILE = "config.json"


class ExportWrapper(nn.Module):
    """f as a plain tensor function: images ``[B, 3, S, S]`` in [0, 1] -> logits ``[B, C, S, S]``.

    ``C = K``, or ``K + 1`` when the model has a learned background (channel 0 = background logit,
    positive = background; then the K part logits)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net(images)
        if out.background_logits is None:
            return out.logits
        return torch.cat([out.background_logits, out.logits], dim=1)


def _config_json(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=False)


def _load_source(source: str | Path):
    """A run folder, checkpoint or exported ``.safetensors`` -> a :class:`PartSegmenter` on the CPU."""
    from partdiscovery.segmenter import PartSegmenter

    return PartSegmenter.load(source, device="cpu")


SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx"}
"""Extensions :meth:`PartSegmenter.load <partdiscovery.segmenter.PartSegmenter.load>` dispatches on: an
export must not carry another format's extension, or it could never be loaded back."""


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a model exported by partdiscovery (any format): only such a file is replaced
    by ``export --overwrite``."""
    try:
        exported_config(path)
    except CheckpointError:
        return False
    return True


def export_model(source: str | Path, fmt: str, out: str | Path, overwrite: bool = False) -> Path:
    """Export the model of ``source`` (run folder, checkpoint or ``.safetensors``) as ``fmt`` to ``out``.

    ``fmt``: ``safetensors``, ``onnx`` or ``torchscript`` (see the module docstring). The file is written
    atomically (a temporary file beside ``out``, then a rename). An existing ``out`` is replaced only with
    ``overwrite``, and only when it is itself a partdiscovery export. Returns ``out``.
    """
    from partdiscovery.utils.outputs import check_output_file

    if fmt not in FORMATS:
        raise PartDiscoveryError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    implied = SUFFIXES.get(out.suffix.lower())
    if implied is not None and implied != fmt:
        raise PartDiscoveryError(
            f"{out}: the extension {out.suffix} is for --format {implied}, not {fmt}; the file could not "
            "be loaded back (choose a matching name)"
        )
    check_output_file(out, overwrite, what="exported model", ours=is_export)
    segmenter = _load_source(source)
    net, cfg = segmenter.net.eval(), segmenter.cfg
    if fmt == "safetensors":
        return _export_safetensors(net, cfg, out)
    if fmt == "onnx":
        return _export_onnx(net, cfg, out)
    return _export_torchscript(net, cfg, out)


# ----------------------------------------------------------------------------------------- safetensors
def _export_safetensors(net: nn.Module, cfg: Config, out: Path) -> Path:
    from safetensors.torch import save

    from partdiscovery import __version__

    # Clone: safetensors refuses tensors that share memory, and wants them contiguous.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    metadata = {
        CONFIG_KEY: _config_json(cfg),
        "format": EXPORT_FORMAT,
        "version": __version__,
        "format_version": EXPORT_FORMAT_VERSION,
    }
    data = save(state, metadata=metadata)
    return atomic_write(out, lambda fh: fh.write(data))


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
        message = str(e).splitlines()[0][:160] if str(e) else ""
        raise CheckpointError(
            f"{path}: exported model is corrupt or not a safetensors file ({type(e).__name__}: {message})"
        ) from None
    try:
        cfg = config_from_dict(json.loads(metadata[CONFIG_KEY]))
    except (json.JSONDecodeError, ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None
    return cfg, state


# ------------------------------------------------------------------------------------ onnx, torchscript
def _example_input(cfg: Config) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, cfg.data.input_size, cfg.data.input_size, generator=generator)


def _export_onnx(net: nn.Module, cfg: Config, out: Path) -> Path:
    try:
        import onnx
    except ImportError:
        raise PartDiscoveryError(
            "ONNX export needs the onnx package: pip install 'partdiscovery[export]'"
        ) from None
    from partdiscovery import __version__

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            ExportWrapper(net).eval(),
            (_example_input(cfg),),
            buffer,
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            opset_version=ONNX_OPSET,
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in (
        (CONFIG_KEY, _config_json(cfg)),
        ("format", EXPORT_FORMAT),
        ("version", __version__),
        ("format_version", EXPORT_FORMAT_VERSION),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    return atomic_write(out, lambda fh: fh.write(data))


def _export_torchscript(net: nn.Module, cfg: Config, out: Path) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings; torch.jit's deprecation notice in recent PyTorch
        traced = torch.jit.trace(ExportWrapper(net).eval(), (_example_input(cfg),))
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_CONFIG_FILE: _config_json(cfg)})
    return atomic_write(out, lambda fh: fh.write(buffer.getbuffer()))


def exported_config(path: str | Path) -> Config:
    """The config stored in an exported file of any of the three formats."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model does not exist")
    try:
        if path.suffix == ".safetensors":
            return load_safetensors(path)[0]
        if path.suffix == ".onnx":
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
            f"{path}: not a partdiscovery export or corrupt ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''})"
        ) from None


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

    def __call__(self, images: torch.Tensor):
        from partdiscovery.models import PartOutput

        (logits,) = self.session.run(["logits"], {"images": images.detach().cpu().float().numpy()})
        logits = torch.from_numpy(logits)
        if self.learned_background:
            return PartOutput(logits[:, 1:], logits[:, :1])
        return PartOutput(logits)


__all__ = [
    "FORMATS",
    "ExportWrapper",
    "OnnxRuntimeNet",
    "export_model",
    "exported_config",
    "is_export",
    "load_safetensors",
]
