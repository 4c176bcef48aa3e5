"""utils/distributed.py: what runs on the main process first, in two gloo processes on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from partdiscovery.utils.distributed import main_first, process_device, setup
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
