"""What the dispatcher's page shows of this worker: the latest state the service was sent
(the fleet and the open bookings of the last ``/rl/round`` or ``/rl/suggest``) with the answer
it gave, and the last decisions with who answered them.

Kept in memory, per worker process: recording costs a few small objects and a lock, nothing
sized by the request is copied (the validated request objects are kept as they are). The
page's map is computed from it when the page asks (:mod:`rldispatch.service.http.fleet_view`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from rldispatch.service.decisions.manager import (
    DispatchRound,
    LiveRequest,
    RLDispatchManager,
    Suggestion,
)
from rldispatch.service.decisions.snapshot import LiveState
from rldispatch.service.http.fleet_schemas import FleetState

MAX_DECISIONS = 60

Kind = Literal["round", "suggest"]
Onboard = dict[str, tuple[tuple[str, float, float, float | None], ...]]
"""Per driver id, the drop-offs without a pickup that began its plan (passengers on board):
``(booking_id, lat, lon, done_in_min)``."""


@dataclass(frozen=True)
class Decision:
    """One decision answered: a round's assignment (or a round that assigned nothing), or a
    suggestion; who answered it and how long it took."""

    at: datetime
    kind: Kind
    booking_id: str | None
    driver_id: str | None
    source: str
    reason: str | None
    model_version: str | None
    arm: str | None
    latency_ms: float
    lookahead: bool
    late: bool | None = None
    pickup_in_min: float | None = None
    shadow_driver_id: str | None = None


@dataclass(frozen=True)
class SeenState:
    """The latest state the service was sent, as the manager played it, and its answer.

    :param placed: ``(booking_id, driver_id)`` the answer placed, in order (a round's
        assignments, or the suggested driver of a suggestion).
    :param onboard: the drop-offs without a pickup that began the drivers' plans.
    """

    at: datetime
    kind: Kind
    state: LiveState
    placed: tuple[tuple[str, str], ...]
    onboard: Onboard
    asked_booking_id: str | None
    source: str
    reason: str | None
    model_version: str | None
    latency_ms: float
    ended: str | None
    sequence: int


class LiveView:
    """The latest state and the last decisions of this worker (thread-safe)."""

    def __init__(self, max_decisions: int = MAX_DECISIONS) -> None:
        self._lock = threading.Lock()
        self._decisions: deque[Decision] = deque(maxlen=max_decisions)
        self._seen: SeenState | None = None
        self._sequence = 0

    def saw(
        self,
        kind: Kind,
        state: LiveState,
        onboard: Onboard,
        decisions: list[Decision],
        placed: tuple[tuple[str, str], ...],
        asked_booking_id: str | None = None,
        ended: str | None = None,
    ) -> None:
        """Keep ``state`` as the latest, answered by ``decisions`` (at least one)."""
        first = decisions[0]
        with self._lock:
            self._sequence += 1
            self._seen = SeenState(
                at=first.at,
                kind=kind,
                state=state,
                placed=placed,
                onboard=onboard,
                asked_booking_id=asked_booking_id,
                source=first.source,
                reason=first.reason,
                model_version=first.model_version,
                latency_ms=first.latency_ms,
                ended=ended,
                sequence=self._sequence,
            )
            self._decisions.extend(decisions)

    def latest(self) -> tuple[SeenState | None, list[Decision]]:
        """The latest state (None: none yet) and the last decisions, newest first."""
        with self._lock:
            return self._seen, list(reversed(self._decisions))


def now_utc() -> datetime:
    return datetime.now(UTC)


def onboard_stops(
    body: FleetState,
) -> dict[str, tuple[tuple[str, float, float, float | None], ...]]:
    """Per driver, the drop-offs without a pickup that begin its plan."""
    onboard = {}
    for driver in body.drivers:
        stops = []
        for stop in driver.plan:
            if stop.kind != "dropoff":
                break
            stops.append((stop.booking_id, stop.location.lat, stop.location.lon, stop.done_in_min))
        if stops:
            onboard[driver.id] = tuple(stops)
    return onboard


def _looks_ahead(manager: RLDispatchManager, source: str) -> bool:
    model = manager.model
    return (
        source == "rl"
        and manager.lookahead is not None
        and model is not None
        and model.can_look_ahead
    )


def record_round(
    view: LiveView,
    manager: RLDispatchManager,
    body: FleetState,
    state: LiveState,
    answer: DispatchRound,
) -> None:
    """Keep a ``/rl/round``'s state and answer: each assignment a decision (a round that
    assigned nothing, one decision of no booking)."""
    at = now_utc()
    lookahead = _looks_ahead(manager, answer.source)
    common = {
        "at": at,
        "kind": "round",
        "source": answer.source,
        "reason": answer.reason,
        "model_version": answer.model_version,
        "arm": None,
        "latency_ms": answer.latency_ms,
        "lookahead": lookahead,
    }
    decisions = [
        Decision(
            booking_id=a.booking_id,
            driver_id=a.driver_id,
            late=a.late,
            pickup_in_min=a.pickup_in_min,
            **common,
        )
        for a in answer.assignments
    ] or [Decision(booking_id=None, driver_id=None, **common)]
    placed = tuple((a.booking_id, a.driver_id) for a in answer.assignments)
    view.saw("round", state, onboard_stops(body), decisions, placed, ended=answer.ended)


def record_suggestion(
    view: LiveView,
    manager: RLDispatchManager,
    body: FleetState,
    request: LiveRequest,
    suggestion: Suggestion,
) -> None:
    """Keep a ``/rl/suggest``'s state (the booking asked about among the open ones) and its
    answer."""
    chosen = suggestion.chosen
    decision = Decision(
        at=now_utc(),
        kind="suggest",
        booking_id=suggestion.booking_id,
        driver_id=suggestion.driver_id,
        source=suggestion.source,
        reason=suggestion.reason,
        model_version=suggestion.model_version,
        arm=suggestion.arm,
        latency_ms=suggestion.latency_ms,
        lookahead=_looks_ahead(manager, suggestion.source),
        late=chosen.late if chosen else None,
        pickup_in_min=chosen.pickup_in_min if chosen else None,
        shadow_driver_id=suggestion.shadow_driver_id,
    )
    placed = ((suggestion.booking_id, suggestion.driver_id),) if suggestion.driver_id else ()
    state = request.state_asked_first  # made where the request was read
    view.saw(
        "suggest",
        state,
        onboard_stops(body),
        [decision],
        placed,
        asked_booking_id=suggestion.booking_id,
    )
