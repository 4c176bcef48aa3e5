"""Per-item work on several threads, results in the items' order.

For loops whose work releases the GIL (OpenCV's GrabCut, PyTorch's kernels, image decoding and encoding): threads
use several cores with one copy of the model and no process start-up, and the loop's results come back in order,
so what it writes does not depend on how many threads computed it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one, e.g. in a container)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``function(item)`` for each of ``items``, in their order, computed by ``workers`` threads.

    At most ``2 * workers`` items are in flight, so a large folder is neither read ahead nor held in memory. An
    exception raised by ``function`` is raised here, at its item; items not yet started are then dropped.
    ``workers <= 1`` computes each item in the calling thread, when it is asked for.
    """
    if workers <= 1:
        for item in items:
            yield function(item)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="partdiscovery") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # an error or an early stop: do not start what nobody will read
            for future in pending:
                future.cancel()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``count`` inside the block and restored after it (``count <= 0``: unchanged).

    Why: a thread that calls into PyTorch gets intra-op threads of its own, as many as the setting when it first
    ran an operator (measured with torch 2.14: four workers running a convolution took a process at 8 intra-op
    threads from 16 to 24 threads, at 1 from 2 to 10), so workers that each run a network on their own item would
    fight over the cores. They are set to one thread each; a pool of workers made and ended inside the block keeps
    that setting throughout."""
    if count <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
