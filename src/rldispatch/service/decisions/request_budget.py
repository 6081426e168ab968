"""The budget of one request: a wall-clock deadline the server sets, and a stop signal.

A request's work (a round's decisions, a suggestion's lookahead, each rollout's steps) asks
:meth:`RequestBudget.spent` between small steps and winds down once it says so: a round ends
with ``ended: "budget"`` keeping the assignments made, a suggestion falls back with the
reason ``request_budget``. The budget is spent when its deadline passes, when the client
disconnects (its answer would go nowhere) or when the server shuts down.
"""

from __future__ import annotations

import threading
import time
import weakref

DEFAULT_REQUEST_BUDGET_MS = 10_000.0
"""The wall-clock budget of one request from its arrival (queue wait included), ms: several
times the slowest round of a geneva day of 30 drivers with ``--lookahead 3``, well under an
HTTP client's usual 30 s timeout."""


class RequestBudget:
    """A deadline on :func:`time.monotonic` and a stop flag shared across threads.

    :param budget_s: seconds from now (None: no deadline, only a stop ends it).
    """

    _live: weakref.WeakSet[RequestBudget] = weakref.WeakSet()
    _live_lock = threading.Lock()

    def __init__(self, budget_s: float | None) -> None:
        if budget_s is not None and not budget_s > 0:
            raise ValueError(f"request budget: must be positive or None, got {budget_s!r}")
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.deadline = None if budget_s is None else self.started + budget_s
        self.stopped_because: str | None = None
        self._stop = threading.Event()
        with RequestBudget._live_lock:
            RequestBudget._live.add(self)

    def spent(self) -> bool:
        """Whether the work should stop now (deadline passed, or stopped)."""
        if self._stop.is_set():
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def stop(self, because: str) -> None:
        """Spend the budget now (``because``: ``client_disconnected``, ``shutdown``)."""
        if self.stopped_because is None:
            self.stopped_because = because
        self._stop.set()

    @property
    def remaining_s(self) -> float | None:
        """Seconds left (0 when spent; None: no deadline)."""
        if self._stop.is_set():
            return 0.0
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @property
    def reason(self) -> str:
        """Why it is spent: ``request_budget`` (the deadline), or what stopped it."""
        return self.stopped_because or "request_budget"

    @classmethod
    def stop_all(cls, because: str) -> int:
        """Stop every budget still in use (the server shuts down); how many."""
        with cls._live_lock:
            budgets = list(cls._live)
        for budget in budgets:
            budget.stop(because)
        return len(budgets)


def no_budget() -> RequestBudget:
    """A budget that is never spent unless stopped (calls made outside a request)."""
    return RequestBudget(None)
