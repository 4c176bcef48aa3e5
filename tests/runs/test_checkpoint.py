"""Checkpoints: atomic, self-describing, loaded safely, newest good one first."""

from __future__ import annotations

import pytest
import torch

from partdiscovery.errors import CheckpointError
from partdiscovery.runs.checkpoint import (
    checkpoint_config,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    prune_checkpoints,
    save_checkpoint,
)


def _run_with_checkpoints(run, steps):
    for step in steps:
        save_checkpoint(
            checkpoint_path(run, step),
            {"model": {"w": torch.full((2,), float(step))}, "config": {}, "step": step},
        )
    return run


def test_checkpoints_are_listed_newest_first_and_pruned(tmp_path):
    run = _run_with_checkpoints(tmp_path / "run", [2, 10, 1])
    (run / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    assert [p.name for p in list_checkpoints(run)] == [
        "step_00000010.pt",
        "step_00000002.pt",
        "step_00000001.pt",
    ]
    prune_checkpoints(run, keep=2)
    assert [p.name for p in list_checkpoints(run)] == ["step_00000010.pt", "step_00000002.pt"]
    assert list_checkpoints(tmp_path / "nothing") == []
    payload = load_checkpoint(checkpoint_path(run, 10))
    assert payload["format_version"] == 1 and payload["step"] == 10
    assert not list(run.glob("**/*.tmp"))  # written through a temporary file, then renamed


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    run = _run_with_checkpoints(tmp_path / "run", [3, 4])
    newest = list_checkpoints(run)[0]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="falling back"):
        path, payload = load_latest(run)
    assert path.name == "step_00000003.pt" and payload["step"] == 3
    list_checkpoints(run)[1].write_bytes(b"")
    with pytest.raises(CheckpointError, match="every checkpoint failed"), pytest.warns(UserWarning):
        load_latest(run)
    with pytest.raises(CheckpointError, match="no checkpoints"):
        load_latest(tmp_path / "nothing")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_payload_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    save_checkpoint(path, {"model": {}, "config": {}, "payload": _Exploit(marker)})
    marker.unlink(missing_ok=True)  # torch.save does not run __reduce__'s result, but be sure
    with pytest.raises(CheckpointError, match="unsafe"):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint(tmp_path / "other.pt", {"weights": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="not a partdiscovery checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_renamed_export_is_named_for_what_it_is(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"is an exported safetensors model.*end in \.safetensors"):
        load_checkpoint(tmp_path / "model.pt")
    (tmp_path / "model.bin").write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x032.9")  # an ONNX ModelProto's start
    with pytest.raises(CheckpointError, match=r"is an exported ONNX model.*end in \.onnx"):
        load_checkpoint(tmp_path / "model.bin")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="checkpoint is corrupt, truncated or unsafe"):
        load_checkpoint(tmp_path / "junk.pt")


def test_checkpoint_config():
    assert checkpoint_config({"config": {"train": {"steps": 7}}}, "x.pt").train.steps == 7
    with pytest.raises(CheckpointError, match=r"x\.pt: its stored config is invalid"):
        checkpoint_config({"config": {"train": {"no_such_key": 1}}}, "x.pt")
