"""RunFolder: file names, whose folder it is, and the metrics log cut back on resume.

The refusals (a user's folder, a finished run, a locked run) are tested through the trainer in
tests/training/test_trainer.py, which is how they are met."""

from __future__ import annotations

import json

import torch

from partdiscovery.runs.checkpoint import checkpoint_path, save_checkpoint
from partdiscovery.runs.folder import RUN_FILES, RunFolder


def test_file_names(tmp_path):
    run = RunFolder(tmp_path)
    assert (run.config.name, run.metrics.name, run.summary.name, run.run_info.name) == RUN_FILES
    assert run.checkpoints == tmp_path / "checkpoints" and run.tensorboard == tmp_path / "tensorboard"
    assert checkpoint_path(tmp_path, 3).parent == run.checkpoints


def test_is_ours(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: config\n")
    assert not RunFolder(mine).is_ours()
    claimed = RunFolder(tmp_path / "claimed")
    claimed.path.mkdir()
    claimed.output.claim()
    assert claimed.is_ours()
    legacy = tmp_path / "legacy"  # from before markers: checkpoints of ours
    save_checkpoint(checkpoint_path(legacy, 1), {"model": {"w": torch.zeros(1)}, "config": {}})
    (legacy / "run_info.json").write_text(
        json.dumps({"git_sha": None, "version": "0", "torch": "2", "argv": []})
    )
    assert RunFolder(legacy).is_ours() and RunFolder(legacy).output.is_ours()


def test_trim_metrics_keeps_each_step_once(tmp_path):
    run = RunFolder(tmp_path)
    run.trim_metrics(3)  # no log yet: nothing to do
    assert not run.metrics.exists()
    run.metrics.write_text("step,total\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n5,0.1\n")
    run.trim_metrics(3)
    assert run.metrics.read_text() == "step,total\n1,0.5\n2,0.4\n3,0.3\n"
