"""Reading exported models: foreign, corrupt and missing files are one clear CheckpointError.

Round trips (write with partdiscovery.export, read back here) are in tests/test_export.py."""

from __future__ import annotations

import json

import pytest
import torch

from partdiscovery import PartSegmenter
from partdiscovery.errors import CheckpointError
from partdiscovery.runs.exported import exported_config, is_export, load_safetensors


def test_foreign_and_corrupt_safetensors_give_checkpoint_error(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a partdiscovery export"):
        load_safetensors(foreign)
    with pytest.raises(CheckpointError, match="not a partdiscovery export"):
        PartSegmenter.load(foreign, device="cpu")

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_safetensors(corrupt)

    bad_config = tmp_path / "bad_config.safetensors"
    save_file(
        {"weight": torch.zeros(1)},
        str(bad_config),
        metadata={"format": "partdiscovery", "config": json.dumps({"model": {"no_such_key": 1}})},
    )
    with pytest.raises(CheckpointError, match="stored config is invalid"):
        load_safetensors(bad_config)

    with pytest.raises(CheckpointError, match="does not exist"):
        load_safetensors(tmp_path / "missing.safetensors")


def test_exported_config_and_is_export_of_foreign_files(tmp_path):
    for name, data in (("model.onnx", b"not onnx"), ("model.pt", b"not torchscript")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match="not a partdiscovery export or corrupt"):
            exported_config(path)
        assert not is_export(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        exported_config(tmp_path / "missing.onnx")
    assert not is_export(tmp_path / "missing.onnx")
