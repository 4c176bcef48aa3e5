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
    >>> export_model("runs/ccp", "safetensors", "ccp.safetensors")  # doctest: +SKIP
    >>> PartSegmenter.load("ccp.safetensors").predict(image)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from partdiscovery import __version__
from partdiscovery.config import Config
from partdiscovery.errors import PartDiscoveryError
from partdiscovery.runs.exported import (
    CONFIG_KEY,
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    SUFFIXES,
    TORCHSCRIPT_CONFIG_FILE,
    is_export,
)
from partdiscovery.runs.model_file import build_net, read_model_file
from partdiscovery.utils.io import atomic_write
from partdiscovery.utils.outputs import check_output_file
from partdiscovery.utils.registry import Registry, UnknownNameError

ONNX_OPSET = 17

EXPORT_FORMATS: Registry[Path] = Registry("export format")
"""Name -> writer ``fn(net, cfg, out: Path) -> out``: f (in eval mode) and its config to one file."""


def list_export_formats() -> list[str]:
    return EXPORT_FORMATS.names()


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


def _load_net(source: str | Path) -> tuple[nn.Module, Config]:
    """f (on the CPU, in eval mode) and its config from a run folder, checkpoint or ``.safetensors``."""
    model = read_model_file(source)
    if model.state is None:
        raise PartDiscoveryError(
            f"{source}: an ONNX model cannot be exported again; export from the run folder, a checkpoint "
            "or a .safetensors export"
        )
    return build_net(model.cfg, model.state, str(model.source)).eval(), model.cfg


def export_model(source: str | Path, fmt: str, out: str | Path, overwrite: bool = False) -> Path:
    """Export the model of ``source`` (run folder, checkpoint or ``.safetensors``) as ``fmt`` to ``out``.

    ``fmt``: one of :func:`list_export_formats` (see the module docstring). The file is written
    atomically (a temporary file beside ``out``, then a rename). An existing ``out`` is replaced only with
    ``overwrite``, and only when it is itself a partdiscovery export. Returns ``out``.
    """
    try:
        write = EXPORT_FORMATS.get(fmt)
    except UnknownNameError as e:
        raise PartDiscoveryError(str(e)) from None
    out = Path(out)
    implied = SUFFIXES.get(out.suffix.lower())
    if implied is not None and implied != fmt:
        raise PartDiscoveryError(
            f"{out}: the extension {out.suffix} is for --format {implied}, not {fmt}; the file could not "
            "be loaded back (choose a matching name)"
        )
    if fmt == "onnx" and out.suffix.lower() != ".onnx":
        # The model-file loader knows an ONNX file by its extension only (safetensors and checkpoints by
        # their first bytes): under another name it would be read as a checkpoint and fail.
        raise PartDiscoveryError(f"{out}: an ONNX export needs the extension .onnx to be loaded back")
    check_output_file(out, overwrite, what="exported model", ours=is_export)
    net, cfg = _load_net(source)
    return write(net, cfg, out)


# ----------------------------------------------------------------------------------------- safetensors
@EXPORT_FORMATS.register("safetensors")
def _export_safetensors(net: nn.Module, cfg: Config, out: Path) -> Path:
    from safetensors.torch import save

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


# ------------------------------------------------------------------------------------ onnx, torchscript
def _example_input(cfg: Config) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, cfg.data.input_size, cfg.data.input_size, generator=generator)


@EXPORT_FORMATS.register("onnx")
def _export_onnx(net: nn.Module, cfg: Config, out: Path) -> Path:
    try:
        import onnx
    except ImportError:
        raise PartDiscoveryError(
            "ONNX export needs the onnx package: pip install 'partdiscovery[export]'"
        ) from None

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


@EXPORT_FORMATS.register("torchscript")
def _export_torchscript(net: nn.Module, cfg: Config, out: Path) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings; torch.jit's deprecation notice in recent PyTorch
        traced = torch.jit.trace(ExportWrapper(net).eval(), (_example_input(cfg),))
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_CONFIG_FILE: _config_json(cfg)})
    return atomic_write(out, lambda fh: fh.write(buffer.getbuffer()))


__all__ = ["EXPORT_FORMATS", "ExportWrapper", "export_model", "list_export_formats"]
