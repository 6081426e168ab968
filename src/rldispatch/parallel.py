"""One map over worker processes, for days that can be played or solved independently.

:func:`parallel_map` runs a top-level function over a list of items in ``jobs`` spawned
processes (``concurrent.futures.ProcessPoolExecutor``) and returns the results in the
order of the items, so a report built from them is the same as with one process. Each
process is single-threaded for NumPy and PyTorch, so ``jobs`` is the number of busy cores.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from rldispatch.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _single_threaded_worker() -> None:
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(jobs: int) -> ProcessPoolExecutor:
    """The process pool of ``jobs`` workers, started once and kept for the next map (a
    spawned worker takes seconds to import what it needs)."""
    if jobs not in _POOLS:
        _POOLS[jobs] = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_single_threaded_worker,
        )
    return _POOLS[jobs]


@atexit.register
def shutdown_pools() -> None:
    """Stop the worker processes (at exit, or to free them earlier)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


def check_jobs(jobs: int) -> int:
    """``jobs`` as an int of at least 1 (``ValueError`` otherwise)."""
    if int(jobs) != jobs or jobs < 1:
        raise ValueError(f"jobs: must be a positive integer, got {jobs!r}")
    return int(jobs)


def parallel_submit(function: Callable[[T], R], items: Sequence[T], jobs: int) -> list[Future]:
    """Start ``function(item)`` for every item on the pool of ``jobs`` processes and return
    at once, one future per item in order (the caller collects them with ``.result()``
    while it does other work)."""
    pool = _pool(check_jobs(jobs))
    return [pool.submit(function, item) for item in items]


def parallel_map(
    function: Callable[[T], R],
    items: Sequence[T],
    jobs: int = 1,
    progress: bool = False,
    label: str = "",
    unit: str = "task",
) -> list[R]:
    """``[function(item) for item in items]``, over ``jobs`` processes when ``jobs > 1``.

    ``function`` must be a module-level function and the items and results picklable (the
    processes are spawned, not forked).
    """
    jobs = check_jobs(jobs)
    bar = progress_bar(progress, total=len(items), desc=label, unit=unit, leave=False)
    if jobs == 1 or len(items) <= 1:
        results = []
        for item in items:
            results.append(function(item))
            bar.update()
        bar.close()
        return results
    pool = _pool(jobs)
    results: list[Any] = [None] * len(items)
    futures = {pool.submit(function, item): k for k, item in enumerate(items)}
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        bar.update()
    bar.close()
    return results
