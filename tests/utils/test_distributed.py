"""utils/distributed.py: what runs on the main process first, in two gloo processes on CPU."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from partdiscovery.utils import distributed
from partdiscovery.utils.distributed import barrier, main_first, process_device, setup
from tests.ddp import spawn


def _make_once(rank: int, folder: str) -> None:
    setup(torch.device("cpu"))
    marker = Path(folder) / "made_by"
    seen = []

    def make() -> dict:
        seen.append(marker.is_file())  # what this process found when its turn came
        if not marker.is_file():
            marker.write_text(str(rank))
        return {"rank": rank}

    got = main_first(make)
    (Path(folder) / f"rank_{rank}.json").write_text(json.dumps({"got": got, "found": seen}))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_main_first_runs_the_main_process_then_the_others_and_gives_all_its_result(tmp_path):
    spawn(_make_once, 2, str(tmp_path))
    assert (tmp_path / "made_by").read_text() == "0"
    main, other = (json.loads((tmp_path / f"rank_{r}.json").read_text()) for r in (0, 1))
    assert main == {"got": {"rank": 0}, "found": [False]}
    assert other == {"got": {"rank": 0}, "found": [True]}  # it ran after the main one, and got its result


def _slow_main(rank: int, folder: str) -> None:
    # Seconds instead of minutes and hours: training's collectives give up after 1 s, the wait for the main
    # process's own work after 60 s.
    distributed.COLLECTIVE_TIMEOUT, distributed.WAIT_TIMEOUT = timedelta(seconds=1), timedelta(seconds=60)
    setup(torch.device("cpu"))
    outcome = {}

    def make() -> str:
        if rank == 0:
            time.sleep(3)  # the masks: longer than a collective may take
        return "masks"

    outcome["main_first"] = main_first(make)
    try:
        if rank == 0:
            time.sleep(3)  # a hung main process, seen by the others at training's next collective
        barrier()
        outcome["barrier"] = "passed"
    except RuntimeError:
        outcome["barrier"] = "timed out"
    (Path(folder) / f"rank_{rank}.json").write_text(json.dumps(outcome))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_the_wait_for_the_main_process_is_long_and_trainings_collectives_are_not(tmp_path):
    """The others wait for the main process's masks longer than a collective may take, and a process that hangs
    in training is noticed after COLLECTIVE_TIMEOUT (it used to be the masks' 6 hours)."""
    spawn(_slow_main, 2, str(tmp_path))
    other = json.loads((tmp_path / "rank_1.json").read_text())
    assert other == {"main_first": "masks", "barrier": "timed out"}


def test_not_distributed_is_a_plain_call(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main_first(lambda: 7) == 7
    assert process_device(torch.device("cpu")) == torch.device("cpu")


def test_each_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert process_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert process_device(torch.device("cpu")) == torch.device("cpu")
