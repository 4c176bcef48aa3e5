"""workflows/report.py: which folders get a report, and which files it may replace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from partdiscovery.errors import PartDiscoveryError
from partdiscovery.workflows import write_report


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def test_report_of_a_missing_run(tmp_path):
    with pytest.raises(PartDiscoveryError, match="no such run folder"):
        write_report(tmp_path / "nope")


def test_report_of_an_empty_or_foreign_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PartDiscoveryError, match="not a run folder"):
        write_report(tmp_path / "empty")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: config\n")
    with pytest.raises(PartDiscoveryError, match="not a run folder written by partdiscovery"):
        write_report(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml"]


def test_the_runs_own_report_is_replaced_but_never_a_users_file(run_copy, tmp_path):
    first = write_report(run_copy)
    assert write_report(run_copy) == first  # the run's own report.html: ours, replaced
    other = tmp_path / "r.html"
    write_report(run_copy, out=other)
    with pytest.raises(PartDiscoveryError, match="--overwrite"):
        write_report(run_copy, out=other)
    write_report(run_copy, out=other, overwrite=True)
    theirs = tmp_path / "theirs.html"
    theirs.write_text("<html>the user's page</html>")
    with pytest.raises(PartDiscoveryError, match="not a partdiscovery report"):
        write_report(run_copy, out=theirs, overwrite=True)
    assert theirs.read_text() == "<html>the user's page</html>"
    with pytest.raises(PartDiscoveryError, match="max_images"):
        write_report(run_copy, out=tmp_path / "x.html", max_images=-1)


def test_part_names_need_the_models_count_and_a_dataset(run_copy, tiny_dataset, tmp_path):
    out = tmp_path / "r.html"
    with pytest.raises(PartDiscoveryError, match=r"--part-names\): the model has 3 parts"):
        write_report(run_copy, data=str(tiny_dataset), out=out, part_names=["head", "tail"])
    with pytest.raises(PartDiscoveryError, match="need a dataset"):
        write_report(run_copy, out=out, part_names=["head", "body", "tail"])
    assert not out.exists()
