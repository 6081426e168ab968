"""Where a request's work runs, how many at once, and for how long.

Every suggestion and round is computed in the thread pool, never on the event loop, so the
loop keeps answering (``/healthz`` among others) whatever the requests in progress. Two
lanes keep a few large requests from holding up the small ones: bodies of at most
:data:`LARGE_BODY_BYTES` run in the small lane, the others in the large lane (the body is
parsed and validated in the pool too: :mod:`rldispatch.service.http.raw_body`). Each lane runs a
few requests at once and lets a bounded number wait; a request that finds its lane's queue
full, or still waits when its budget is spent, is answered ``503`` with ``Retry-After`` at
once rather than left to time out.

While a request's work runs, its connection is watched: when the client goes away the
request's budget is stopped, and the work winds down at its next check
(:mod:`rldispatch.service.decisions.request_budget`). While large requests run the cyclic garbage
collector is paused (its full passes over their objects would hold the GIL for up to a
second); after each, the memory it freed is handed back to the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from rldispatch.service.decisions.request_budget import RequestBudget

LARGE_BODY_BYTES = 64 * 1024
"""Bodies larger than this run in the large lane (about 150 drivers, bookings and stops)."""
SMALL_RUNNING = 4
SMALL_WAITING = 64
LARGE_RUNNING = 2
LARGE_WAITING = 4
DISCONNECT_POLL_S = 0.05
"""How often a running request's connection is checked for a client that went away."""

T = TypeVar("T")


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)`` (a no-op elsewhere): hands the heap's free memory back to
    the system. After a large request frees its arrays, glibc would otherwise keep up to
    tens of MB per thread arena for reuse."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


release_free_memory = _malloc_trim()


def settle_heap() -> None:
    """Collect once, then put every object alive (modules, the model, start-up caches) out
    of the cyclic collector's reach (``gc.freeze``).

    The collector's full pass walks every tracked object: after start-up that is a few
    hundred thousand of them, and a pass that falls inside a request adds tens of ms to its
    answer (at 300 drivers, a p99 of 300 ms for reading a request against a p50 of 15 ms).
    Frozen objects are never walked, so later passes see only what requests make. Called
    once the service has loaded its model and warmed up.
    """
    gc.collect()
    gc.freeze()


class Busy(HTTPException):
    """503 with ``Retry-After``: the lane's queue is full, or the request waited its whole
    budget."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=detail,
            headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))},
        )


@dataclass
class Lane:
    """``running`` requests at once, at most ``waiting`` more queued."""

    name: str
    running: int
    waiting: int

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.running)
        self.in_lane = 0
        self.refused = 0

    async def run(self, budget: RequestBudget, work: Callable[[], T], large: bool) -> T:
        """``work()`` in the pool once a slot is free (503 when the queue is full or the
        budget is spent while waiting)."""
        retry_after_s = budget.budget_s or 1.0
        if self.in_lane >= self.running + self.waiting:
            self.refused += 1
            raise Busy(
                f"busy: {self.in_lane} {self.name} requests in progress or waiting; retry later",
                retry_after_s,
            )
        self.in_lane += 1
        try:
            if not await self._acquire(budget.remaining_s):
                self.refused += 1
                raise Busy(
                    f"busy: no {self.name} request slot freed within the request budget; "
                    "retry later",
                    retry_after_s,
                )
            try:
                return await run_in_threadpool(run_work, work, large)
            finally:
                self._slots.release()
        finally:
            self.in_lane -= 1

    async def _acquire(self, timeout_s: float | None) -> bool:
        """A slot within ``timeout_s`` (None: however long); a slot granted as the wait
        times out is handed back, never lost."""
        if not self._slots.locked():  # one is free: taken now, no task or timer made
            await self._slots.acquire()
            return True
        acquiring = asyncio.ensure_future(self._slots.acquire())
        done, _ = await asyncio.wait({acquiring}, timeout=timeout_s)
        if done:
            return True
        acquiring.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acquiring
        if not acquiring.cancelled():
            self._slots.release()
        return False


class _CollectorPause:
    """The cyclic garbage collector off while large requests run, on again after the last.

    A large request makes millions of objects (its body, its models); each automatic full
    collection then walks them all, holding the GIL for up to a second, and every thread,
    the event loop included, waits. Its objects are freed by reference counting when it ends;
    what cycles it left are collected once the collector is back on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._was_enabled:
                gc.enable()


_collector_pause = _CollectorPause()


def run_work(work: Callable[[], T], large: bool) -> T:
    """``work`` as a request's thread runs it: a large request's with the cyclic collector
    paused, and the memory it freed handed back to the system after it."""
    if not large:
        return work()
    try:
        with _collector_pause:
            return work()
    finally:
        release_free_memory()


@dataclass
class Lanes:
    """The two lanes of one app."""

    small: Lane
    large: Lane
    clients_gone: int = 0
    """Requests whose client disconnected while they ran (their work stopped)."""


def new_lanes() -> Lanes:
    """The lanes of one app (created with it, on its event loop)."""
    return Lanes(
        Lane("small", SMALL_RUNNING, SMALL_WAITING), Lane("large", LARGE_RUNNING, LARGE_WAITING)
    )


async def _watch_client(request: Request, budget: RequestBudget) -> None:
    """Stop ``budget`` when the client disconnects (checked every :data:`DISCONNECT_POLL_S`,
    the first time one poll after the work starts: a request answered sooner costs no
    check)."""
    while True:
        await asyncio.sleep(DISCONNECT_POLL_S)
        if budget.spent():
            return
        if await request.is_disconnected():
            budget.stop("client_disconnected")
            return


async def answer(
    request: Request, body_bytes: int, budget: RequestBudget, work: Callable[[], T]
) -> T:
    """``work()`` in the pool, in the lane of a body of ``body_bytes``, with its client
    watched; raises :class:`Busy` (503) when the lane cannot take it."""
    lanes: Lanes = request.app.state.lanes
    large = body_bytes > LARGE_BODY_BYTES
    lane = lanes.large if large else lanes.small
    watcher = asyncio.create_task(_watch_client(request, budget))
    try:
        return await lane.run(budget, work, large=large)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if budget.stopped_because == "client_disconnected":
            lanes.clients_gone += 1
