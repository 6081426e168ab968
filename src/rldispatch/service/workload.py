"""How much work a request is, and where it runs.

A small request is answered on the event loop (a fraction of a millisecond: less than a hop
to the thread pool costs). A large one runs in the thread pool, at most
:data:`MAX_LARGE_AT_ONCE` at a time, so the memory of requests in progress stays bounded
whatever their number: the state of a maximal request (10,000 drivers, 1,000 open bookings)
takes a few hundred MB while it is answered and is freed after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

INLINE_MAX_ITEMS = 100
"""Requests with more drivers, open bookings and plan stops than this run in the pool."""
MAX_LARGE_AT_ONCE = 2

T = TypeVar("T")


def large_request_gate() -> asyncio.Semaphore:
    """The gate of large requests (one per app, created with it)."""
    return asyncio.Semaphore(MAX_LARGE_AT_ONCE)


async def answer(request: Request, items: int, compute: Callable[..., T], *args: object) -> T:
    """``compute(*args)`` inline when ``items`` is small, else in the pool behind the gate."""
    if items <= INLINE_MAX_ITEMS:
        return compute(*args)
    async with request.app.state.large_requests:
        return await run_in_threadpool(compute, *args)
