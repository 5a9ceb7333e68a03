"""An ordered thread map with bounded lookahead, for per-ROI work.

Rasterising and writing an ROI spends most of its time in numpy and zlib, which release
the GIL, so two threads use both cores of a small machine. At most ``workers`` results
wait ahead of the consumer, which bounds memory to a few masks.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["default_workers", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Threads for per-ROI work: the usable CPUs, at most 4."""
    return max(
        1,
        min(
            4,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1,
        ),
    )


def ordered_map(
    function: Callable[[T], R], items: Iterable[T], workers: int
) -> Generator[R, None, None]:
    """Yield ``function(item)`` for every item, in order, computing up to ``workers`` at once.

    With ``workers <= 1`` everything runs in the calling thread. An exception in
    ``function`` is raised when its result is reached.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
