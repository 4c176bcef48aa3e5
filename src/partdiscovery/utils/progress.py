"""Progress for long steps: a tqdm bar on a terminal, plain log lines otherwise (CI logs, files, pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    desc: str,
    enabled: bool = True,
    total: int | None = None,
    unit: str = "it",
    every_s: float = 30.0,
) -> Iterator[T]:
    """Iterate with a progress bar when stderr is a terminal, else a log line at most every ``every_s``
    seconds (and at the end), so redirected output stays readable."""
    if not enabled:
        yield from iterable
        return
    if sys.stderr.isatty():
        yield from tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True)
        return
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    started = last = time.perf_counter()
    count = 0
    for item in iterable:
        yield item
        count += 1
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            of = f"/{total}" if total else ""
            print(f"{desc}: {count}{of} {unit} ({now - started:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"{desc}: done, {count} {unit} in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True
    )
