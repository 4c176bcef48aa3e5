"""ordered_map: results in the items' order whatever the threads, errors raised at their item, no read-ahead;
torch_threads: set inside its block, restored after it."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from partdiscovery.utils import threads
from partdiscovery.utils.threads import available_cpus, ordered_map, torch_threads


@pytest.mark.parametrize("workers", [0, 1, 2, 5])
def test_results_come_in_the_items_order(workers):
    def slow_square(x: int) -> int:
        time.sleep(0.001 * (7 - x % 7))  # later items finish first
        return x * x

    assert list(ordered_map(slow_square, range(20), workers)) == [x * x for x in range(20)]


def test_several_workers_run_at_once():
    """Four items that each wait for the others finish only if four threads run them together."""
    barrier = threading.Barrier(4, timeout=10)
    names = list(ordered_map(lambda _: (barrier.wait(), threading.current_thread().name)[1], range(4), 4))
    assert len(set(names)) == 4 and all(name.startswith("partdiscovery") for name in names)


def test_one_worker_computes_in_the_calling_thread_when_asked():
    seen = []
    results = ordered_map(lambda x: seen.append(threading.current_thread()) or x, range(3), 1)
    assert seen == []  # nothing computed before it is asked for
    assert next(results) == 0 and seen == [threading.current_thread()]


def test_an_error_is_raised_at_its_item_and_the_rest_is_not_started():
    started = []

    def fail_at_three(x: int) -> int:
        started.append(x)
        if x == 3:
            raise ValueError("bad item 3")
        return x

    results = ordered_map(fail_at_three, range(1000), 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(results)
    assert len(started) < 20  # at most 2 x workers ahead of the reader, not the whole list


def test_at_most_twice_the_workers_items_are_taken_before_the_first_result():
    taken = []

    def items():
        for x in range(100):
            taken.append(x)
            yield x

    results = ordered_map(lambda x: x, items(), 3)
    assert next(results) == 0 and len(taken) == 6
    results.close()


def test_an_early_stop_does_not_start_the_items_still_queued(monkeypatch):
    """Both workers are busy with items 1 and 2 when the reader stops after item 0: item 3, queued behind them, is
    never run. (The busy items are let go only when the pool shuts down, after ordered_map dropped the queue.)"""
    release = threading.Event()
    busy = threading.Barrier(3, timeout=10)
    started = []

    class Pool(threads.ThreadPoolExecutor):
        def shutdown(self, *args, **kwargs):
            release.set()
            super().shutdown(*args, **kwargs)

    def work(x: int) -> int:
        started.append(x)
        if x in (1, 2):
            busy.wait()
            release.wait(timeout=10)
        return x

    monkeypatch.setattr(threads, "ThreadPoolExecutor", Pool)
    results = ordered_map(work, range(10), 2)
    assert next(results) == 0
    busy.wait()  # both workers hold an item; item 3 waits in the pool's queue
    results.close()
    assert sorted(started) == [0, 1, 2]


def test_available_cpus_are_those_this_process_may_run_on():
    import os

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cpus() == expected


def test_available_cpus_without_an_affinity_mask_are_the_cpu_count(monkeypatch):
    import os

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert available_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # undeterminable
    assert available_cpus() == 1


def test_torch_threads_are_set_inside_the_block_and_restored_after_it():
    before = torch.get_num_threads()
    count = 2 if before == 1 else 1  # another number than the setting's, or a missing restore goes unseen
    with torch_threads(count):
        assert torch.get_num_threads() == count
        workers_see = list(ordered_map(lambda _: torch.get_num_threads(), range(4), 2))
    assert workers_see == [count] * 4 and torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), torch_threads(count):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
