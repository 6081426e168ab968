"""What one logged request (``/rl/suggest``, or the state of a ``/rl/round``) showed: its
bookings and drivers, their times as local wall-clock times (see
:mod:`rldispatch.feedback.service_log`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rldispatch.domain import Places
from rldispatch.scenarios.history.day_building import MINUTE

if TYPE_CHECKING:
    from rldispatch.service.http.fleet_schemas import FleetState


@dataclass(frozen=True)
class BookingSeen:
    """A booking as one request showed it, its times as local wall-clock times."""

    booking_id: str
    clock: datetime
    row_id: int
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    requested: datetime
    window_opens: datetime
    window_closes: datetime
    service_min: float
    priority: int
    load: Places
    max_ride_min: float | None = None


@dataclass(frozen=True)
class DriverSeen:
    """A driver as one request showed it; ``breaks`` are the breaks its plan still held,
    ``(earliest, latest, duration_min)``, and ``shared_rides`` the request's flag."""

    driver_id: str
    clock: datetime
    row_id: int
    position: tuple[float, float]
    shift_starts: datetime
    shift_ends: datetime
    capacity: Places
    breaks: tuple[tuple[datetime, datetime, float], ...] = ()
    shared_rides: bool = False


def _places(value: Any) -> Places:
    """A request's places (an integer: seated places; else its places by kind)."""
    return value.to_domain() if hasattr(value, "to_domain") else Places(seated=int(value))


def first_validation_error(error: ValidationError) -> str:
    """The first field that fails and why (``drivers.0.shift_ends_in_min: ...``)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def request_data(value: Any) -> Any:
    """A logged request as data; JSON text is parsed (``ValueError`` when it is not JSON)."""
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def round_minute(request: Any) -> float | None:
    """The clock (minute of day) of a ``/rl/round`` row's summary; -1 for a round row without
    a usable clock; None when the row is not a round's."""
    if not isinstance(request, dict) or "round" not in request or "booking" in request:
        return None
    summary = request["round"]
    minute = summary.get("minute_of_day") if isinstance(summary, dict) else None
    if isinstance(minute, (int, float)) and math.isfinite(minute) and 0 <= minute < 1440:
        return float(minute)
    return -1.0


def request_clock(body: FleetState, created: datetime) -> datetime:
    """The local wall-clock time of a request logged at ``created`` (local): its
    ``minute_of_day`` on its ``service_date`` when it gave them, else the log's date and
    time."""
    date = created.date() if body.service_date is None else body.service_date
    if body.minute_of_day is None:
        return datetime.combine(date, created.time(), created.tzinfo)
    return datetime.combine(date, time(), created.tzinfo) + body.minute_of_day * MINUTE


def asked_booking_ids(body: FleetState) -> set[str]:
    """The bookings a logged row may be about: the booking asked about (``/rl/suggest``), or
    any open booking of the round's state (``/rl/round``)."""
    asked = getattr(body, "booking", None)
    return {asked.id} if asked is not None else {b.id for b in body.open_bookings}


def observations(
    body: FleetState, clock: datetime, row_id: int
) -> tuple[list[BookingSeen], list[DriverSeen]]:
    """The bookings (asked about, open, planned) and drivers of one request made at
    ``clock``."""

    def at(minutes: float) -> datetime:
        return clock + minutes * MINUTE

    bookings = [
        BookingSeen(
            booking_id=b.id,
            clock=clock,
            row_id=row_id,
            pickup=b.pickup.pair(),
            dropoff=b.dropoff.pair(),
            requested=at(b.requested_in_min),
            window_opens=at(b.window_opens_in_min),
            window_closes=at(b.window_closes_in_min),
            service_min=b.service_min,
            priority=b.priority,
            load=_places(b.load),
            max_ride_min=b.max_ride_min,
        )
        for b in (*([body.booking] if hasattr(body, "booking") else []), *body.open_bookings)
    ]
    drivers = []
    for driver in body.drivers:
        dropoffs = {s.booking_id: s for s in driver.plan if s.kind == "dropoff"}
        for stop in driver.plan:
            if stop.kind != "pickup":
                continue
            dropoff = dropoffs[stop.booking_id]
            bookings.append(
                BookingSeen(
                    booking_id=stop.booking_id,
                    clock=clock,
                    row_id=row_id,
                    pickup=stop.location.pair(),
                    dropoff=dropoff.location.pair(),
                    requested=at(stop.requested_in_min or 0.0),
                    window_opens=at(stop.window_opens_in_min or 0.0),
                    window_closes=at(stop.window_closes_in_min or 0.0),
                    service_min=stop.service_min,
                    priority=stop.priority,
                    load=_places(stop.load),
                    max_ride_min=stop.max_ride_min,
                )
            )
        starts = 0.0 if driver.shift_starts_in_min is None else driver.shift_starts_in_min
        drivers.append(
            DriverSeen(
                driver_id=driver.id,
                clock=clock,
                row_id=row_id,
                position=driver.position.pair(),
                shift_starts=at(starts),
                shift_ends=at(driver.shift_ends_in_min),
                capacity=_places(driver.capacity),
                breaks=tuple(
                    (at(s.earliest_in_min), at(s.latest_in_min), s.duration_min)
                    for s in driver.plan
                    if s.kind == "break"
                ),
                shared_rides=bool(body.shared_rides),
            )
        )
    return bookings, drivers
