"""RunFolder: file names, whose folder it is, and the metrics log cut back on resume.

The refusals (a user's folder, a finished run, a locked run) are tested through the trainer in
tests/training/test_trainer.py, which is how they are met."""

from __future__ import annotations

import json

import pytest
import torch

from partdiscovery.runs.checkpoint import checkpoint_path, list_checkpoints, save_checkpoint
from partdiscovery.runs.folder import REPORT_GENERATOR, RUN_FILES, RunFolder, is_metrics_json, is_report


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


def test_is_metrics_json(tmp_path):
    ours, theirs, broken = tmp_path / "m.json", tmp_path / "t.json", tmp_path / "b.json"
    ours.write_text(json.dumps({"split": "test", "data": "d", "source": "s", "fg_nmi": 1.0}))
    theirs.write_text(json.dumps({"split": "test"}))
    broken.write_text("{")
    assert is_metrics_json(ours)
    assert not is_metrics_json(theirs) and not is_metrics_json(broken) and not is_metrics_json(tmp_path / "x")


def test_is_report(tmp_path):
    ours, theirs = tmp_path / "ours.html", tmp_path / "theirs.html"
    ours.write_text(f'<html><head><meta name="generator" content="{REPORT_GENERATOR} 0.22.0"></head></html>')
    theirs.write_text("<html><head><title>my notes</title></head></html>")
    assert is_report(ours) and not is_report(theirs) and not is_report(tmp_path / "missing.html")


def _finished_run_with_results(path):
    """A finished run folder that ``report`` and ``evaluate --json`` wrote into, and a file of the user's."""
    run = RunFolder(path)
    run.prepare(resume=False, overwrite=False)
    save_checkpoint(checkpoint_path(path, 2), {"model": {"w": torch.zeros(1)}, "config": {}})
    run.summary.write_text("{}")
    run.metrics.write_text("step,loss\n1,0.5\n")
    (path / "report.html").write_text(f'<meta name="generator" content="{REPORT_GENERATOR} 0.22.0">')
    (path / "test_metrics.json").write_text(json.dumps({"split": "test", "data": "d", "source": str(path)}))
    checkpoint = str(checkpoint_path(path, 2))  # `evaluate --run RUN/checkpoints/step_2.pt`
    (path / "val.json").write_text(json.dumps({"split": "val", "data": "d", "source": checkpoint}))
    # About another model, kept beside the run (`evaluate --predictions runs/kmeans --json RUN/kmeans.json`).
    (path / "kmeans.json").write_text(
        json.dumps({"split": "test", "data": "d", "source": str(path.parent / "km")})
    )
    (path / "notes.json").write_text(json.dumps({"mine": True}))
    return run


def test_overwrite_removes_what_described_the_old_run(tmp_path):
    run = _finished_run_with_results(tmp_path / "run")
    assert [p.name for p in run.derived_files()] == ["report.html", "test_metrics.json", "val.json"]
    with pytest.warns(UserWarning, match="removed report.html, test_metrics.json, val.json"):
        run.prepare(resume=False, overwrite=True)
    left = sorted(p.name for p in run.path.iterdir() if not p.name.startswith("."))
    # Another model's metrics and the user's file stay.
    assert left == ["checkpoints", "kmeans.json", "notes.json"]
    assert not list_checkpoints(run.path)


def test_resume_keeps_the_results(tmp_path):
    run = _finished_run_with_results(tmp_path / "run")
    run.summary.unlink()  # an interrupted run: --resume continues it
    run.prepare(resume=True, overwrite=False)
    assert [p.name for p in run.derived_files()] == ["report.html", "test_metrics.json", "val.json"]


def test_read_run_info_is_empty_where_there_is_none_or_it_is_unreadable(tmp_path):
    run = RunFolder(tmp_path)
    assert run.read_run_info() == {}
    run.run_info.write_text("{broken")
    assert run.read_run_info() == {}
    run.run_info.write_text("[1, 2]")
    assert run.read_run_info() == {}
    run.run_info.write_text('{"split": "train"}')
    assert run.read_run_info() == {"split": "train"}
