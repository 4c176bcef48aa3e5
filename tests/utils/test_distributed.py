"""utils/distributed.py: what runs on the main process first, in two gloo processes on CPU."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from partdiscovery.utils import distributed
from partdiscovery.utils.distributed import (
    COLLECTIVE_TIMEOUT,
    WAIT_TIMEOUT,
    DistInfo,
    Shard,
    barrier,
    env_info,
    main_first,
    process_device,
    setup,
)
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


def _others_take_long(rank: int, folder: str) -> None:
    # Seconds instead of minutes and hours, as in _slow_main.
    distributed.COLLECTIVE_TIMEOUT, distributed.WAIT_TIMEOUT = timedelta(seconds=1), timedelta(seconds=60)
    setup(torch.device("cpu"))
    made = Path(folder) / "made_by_1"

    def make() -> str:
        if rank == 1:
            # No access to the main process's files: it makes its own, longer than a collective may take.
            time.sleep(2)
            made.write_text("1")
        return "masks"

    got = main_first(make)
    (Path(folder) / f"rank_{rank}.json").write_text(json.dumps({"got": got, "others_done": made.is_file()}))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_main_first_returns_on_the_main_process_once_the_others_have_made_theirs(tmp_path):
    """The main process returns only once the others have made their files too, and waits for them under
    WAIT_TIMEOUT: returning early, it would wait at training's first collective, which gives up after
    COLLECTIVE_TIMEOUT."""
    spawn(_others_take_long, 2, str(tmp_path))
    main, other = (json.loads((tmp_path / f"rank_{r}.json").read_text()) for r in (0, 1))
    assert main == other == {"got": "masks", "others_done": True}


def test_env_info_reads_torchruns_variables(monkeypatch):
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")  # the second process of the third node
    assert env_info() == DistInfo(rank=5, world_size=8, local_rank=1)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert env_info() == DistInfo(rank=0, world_size=1, local_rank=0)
    assert not env_info().enabled and env_info().is_main


def test_the_main_process_is_global_rank_0_not_each_nodes_first():
    assert DistInfo(rank=0, world_size=4, local_rank=0).is_main
    assert not DistInfo(rank=2, world_size=4, local_rank=0).is_main


def test_shards_tile_the_global_batch_in_global_rank_order():
    """On two nodes of two processes, local ranks repeat: the slice follows the global rank."""
    shards = [DistInfo(rank=r, world_size=4, local_rank=r % 2).shard(8) for r in range(4)]
    assert shards == [Shard(0, 2, 8), Shard(2, 2, 8), Shard(4, 2, 8), Shard(6, 2, 8)]
    assert not any(s.is_whole for s in shards)  # every process takes the global batch's gather path
    assert DistInfo().shard(8) == Shard(0, 8, 8) and DistInfo().shard(8).is_whole
    with pytest.raises(ValueError, match="a batch of 6 does not split over 4 processes"):
        DistInfo(rank=0, world_size=4).shard(6)  # the leftover images would be dropped unsaid


def test_setup_joins_once_and_takes_the_gpu_of_its_local_rank(monkeypatch):
    """Recorded, not joined (a single process, no GPU needed): what setup asks of torch on process 3 of 4, the
    second one of its node."""
    calls = []
    joined = False

    def init_process_group(backend, timeout):
        nonlocal joined
        calls.append(("init", backend, timeout))
        joined = True

    def new_group(backend, timeout):
        calls.append(("wait", backend, timeout))

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(distributed, "_wait_group", None)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: joined)
    monkeypatch.setattr(torch.distributed, "init_process_group", init_process_group)
    monkeypatch.setattr(torch.distributed, "new_group", new_group)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("gpu", index)))
    assert setup(torch.device("cuda")) == DistInfo(rank=3, world_size=4, local_rank=1)
    assert calls == [("gpu", 1), ("init", "nccl", COLLECTIVE_TIMEOUT), ("wait", "gloo", WAIT_TIMEOUT)]
    setup(torch.device("cuda"))  # joined already: nothing more (a second init_process_group raises)
    assert len(calls) == 3


def test_not_distributed_is_a_plain_call(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main_first(lambda: 7) == 7
    assert process_device(torch.device("cpu")) == torch.device("cpu")
    assert process_device(torch.device("cuda")) == torch.device("cuda")  # as given: no index added


def test_each_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert process_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert process_device(torch.device("cpu")) == torch.device("cpu")


def test_on_a_second_node_a_process_takes_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert process_device(torch.device("cuda")) == torch.device("cuda", 1)
