"""How much work a request is, and where it runs.

A small request is answered on the event loop (a fraction of a millisecond: less than a hop
to the thread pool costs). A large one runs in the thread pool, at most
:data:`MAX_LARGE_AT_ONCE` at a time, so the memory of requests in progress stays bounded
whatever their number, and the memory they freed is handed back to the system after each.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

INLINE_MAX_ITEMS = 100
"""Requests with more drivers, open bookings and plan stops than this run in the pool."""
MAX_LARGE_AT_ONCE = 2

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


def large_request_gate() -> asyncio.Semaphore:
    """The gate of large requests (one per app, created with it)."""
    return asyncio.Semaphore(MAX_LARGE_AT_ONCE)


async def answer(request: Request, items: int, compute: Callable[..., T], *args: object) -> T:
    """``compute(*args)`` inline when ``items`` is small, else in the pool behind the gate."""
    if items <= INLINE_MAX_ITEMS:
        return compute(*args)
    async with request.app.state.large_requests:
        return await run_in_threadpool(_compute_and_release, compute, *args)


def _compute_and_release(compute: Callable[..., T], *args: object) -> T:
    try:
        return compute(*args)
    finally:
        release_free_memory()
