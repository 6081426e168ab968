"""The service days being rebuilt from the rows of the service's log: which day each row
belongs to, the bookings and drivers the rows show, the decisions and outcomes, and what is
skipped and why (:mod:`rldispatch.feedback.service_log` reads the rows and explains the
rules)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from pydantic import ValidationError

from rldispatch.domain import Booking, Break, Driver, Scenario, ScenarioError, TravelConfig
from rldispatch.feedback.service_archive import UnreadableLine
from rldispatch.feedback.service_requests import (
    BookingSeen,
    DriverSeen,
    asked_booking_ids,
    first_validation_error,
    observations,
    request_clock,
    request_data,
    round_minute,
)
from rldispatch.scenarios.history.day_building import MINUTE, service_day_start, travel_for
from rldispatch.scenarios.history.results import (
    CollectedDay,
    CollectResult,
    RowProblem,
    SkippedDay,
    SkippedRow,
)
from rldispatch.service.http.fleet_schemas import RoundRequest, SuggestRequest
from rldispatch.service.log.round_states import (
    logged_road_network,
    resolve_round_request,
    suggestion_body,
)
from rldispatch.service.log.tables import NOTHING_ASSIGNED
from rldispatch.text import plural

MINUTE_DECIMALS = 6
"""Minutes in a day file are rounded to this many decimals (a microsecond is 1.7e-8 min)."""
SUGGESTIONS = "rl_suggestions"
OUTCOMES = "rl_outcomes"
"""The service's tables (:mod:`rldispatch.service.log.tables`)."""
COUNT_NAMES = (
    "suggestions_read",
    "suggestions_used",
    "suggestions_skipped",
    "rounds_without_assignment",
    "outcomes_read",
    "outcomes_matched",
    "outcomes_skipped",
)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` as a local wall-clock time in ``zone`` (a naive time is taken as UTC: the
    service writes UTC, and SQLite gives it back without its zone)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).replace(tzinfo=None)


def _service_day(clock: datetime, day_start_hour: float) -> date:
    return (clock - timedelta(hours=day_start_hour)).date()


def _minutes(value: float) -> float:
    return round(float(value), MINUTE_DECIMALS) + 0.0


@dataclass
class _Day:
    """What the rows of one service day gave."""

    suggestion_ids: list[int] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    drivers: list[DriverSeen] = field(default_factory=list)
    outcome_rows: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_NAMES, 0))
    travels: Counter[TravelConfig] = field(default_factory=Counter)
    """The travel the service played the day's requests with (rows that logged it)."""


class ServiceDayBuilder:
    """Collects the rows of the service days from ``since`` to ``until`` and builds them."""

    def __init__(
        self,
        since: date,
        until: date,
        zone: tzinfo,
        timezone: str,
        day_start_hour: float,
        horizon_min: float,
        min_bookings: int,
        travel: TravelConfig | None,
    ) -> None:
        self.since, self.until = since, until
        self.zone, self.timezone = zone, timezone
        self.day_start_hour, self.horizon_min = day_start_hour, horizon_min
        self.min_bookings = min_bookings
        self.travel = travel_for(travel, day_start_hour)
        self.days: dict[date, _Day] = defaultdict(_Day)
        self.first_seen: dict[str, BookingSeen] = {}
        self.skipped_rows: list[SkippedRow] = []
        self.booking_days: dict[str, date] | None = None
        self.outcome_rows: list[tuple[Any, str | None]] = []
        self.placed: tuple[dict[date, list[Booking]], list[RowProblem], int] | None = None
        self.round_states: dict[str, str] = {}
        """The rounds' logged states (key: compressed text) the rows may name."""

    def in_range(self, day: date) -> bool:
        return self.since <= day <= self.until

    def _skip(
        self, table: str, row_id: int | None, reason: str, day: date, where: str | None = None
    ) -> None:
        self.skipped_rows.append(SkippedRow(table, row_id, reason, day, where))
        counts = self.days[day].counts
        prefix = "suggestions" if table == SUGGESTIONS else "outcomes"
        counts[f"{prefix}_read"] += 1
        counts[f"{prefix}_skipped"] += 1

    def add_unreadable(self, lines: list[UnreadableLine]) -> None:
        """Archive lines that are not rows: skipped on the service day of their creation time
        (the day their file is named after when it cannot be read), if in the range."""
        for line in lines:
            day = line.file_day
            if line.created_at is not None:
                day = _service_day(_local(line.created_at, self.zone), self.day_start_hour)
            if self.in_range(day):
                self._skip(line.table, line.row_id, line.reason, day, line.where)

    def add_suggestion(self, row: Any, where: str | None = None) -> None:
        """Use a row of ``rl_suggestions`` (read from the archive's ``where``, if it was)."""
        row_id = int(row["id"])
        created = _local(row["created_at"], self.zone)

        def skip(reason: str, day: date) -> None:
            self._skip(SUGGESTIONS, row_id, reason, day, where)

        try:
            request = request_data(row["request"])
        except (ValueError, TypeError, RecursionError) as error:
            day = _service_day(created, self.day_start_hour)
            if self.in_range(day):
                skip(f"request: not JSON ({error})", day)
            return
        try:
            request = resolve_round_request(request, self.round_states)
        except (KeyError, ValueError) as error:
            day = _service_day(created, self.day_start_hour)
            if self.in_range(day):
                problem = "missing" if isinstance(error, KeyError) else f"unreadable ({error})"
                skip(f"request: the round's logged state (rl_round_states) is {problem}", day)
            return
        round_clock = round_minute(request)
        if round_clock is not None and "state" not in request:
            clock = created
            if round_clock >= 0:
                clock = datetime.combine(created.date(), time()) + round_clock * MINUTE
            day = _service_day(clock, self.day_start_hour)
            if self.in_range(day):
                reason = (
                    "a /rl/round decision logged with a summary of its request only (no "
                    "fleet, no bookings: a service older than the round's logged state, or "
                    "a state too large to log)"
                )
                skip(reason, day)
            return
        schema, body_data = (
            (RoundRequest, request["state"])
            if round_clock is not None
            else (SuggestRequest, suggestion_body(request))
        )
        try:
            body = schema.model_validate(body_data)
        except ValidationError as error:
            day = _service_day(created, self.day_start_hour)
            if self.in_range(day):
                skip(f"request does not validate: {first_validation_error(error)}", day)
            return
        clock = request_clock(body, created)
        day = _service_day(clock, self.day_start_hour)
        if not self.in_range(day):
            return
        waited = isinstance(body, RoundRequest) and row["booking_id"] == NOTHING_ASSIGNED
        if not waited and row["booking_id"] not in asked_booking_ids(body):
            what = (
                "request's booking" if isinstance(body, SuggestRequest) else "round's open bookings"
            )
            skip(f"booking_id: the row's {row['booking_id']!r} is not among the {what}", day)
            return
        bookings, drivers = observations(body, clock, row_id)
        for seen in bookings:
            known = self.first_seen.get(seen.booking_id)
            if known is None or (seen.clock, seen.row_id) < (known.clock, known.row_id):
                self.first_seen[seen.booking_id] = seen
        target = self.days[day]
        if body.travel is not None:
            played = travel_for(body.travel.to_domain(), self.day_start_hour)
            target.travels[replace(played, road_network=logged_road_network(request))] += 1
        target.drivers.extend(drivers)
        target.suggestion_ids.append(row_id)
        target.counts["suggestions_read"] += 1
        target.counts["suggestions_used"] += 1
        target.counts["rounds_without_assignment"] += waited
        day_start = service_day_start(day, self.day_start_hour)
        target.decisions.append(
            {
                "suggestion_id": row_id,
                "at_min": _minutes((clock - day_start) / MINUTE),
                "booking_id": None if waited else row["booking_id"],
                "driver_id": None if waited else row["driver_id"],
                "source": row["source"],
                "reason": row["reason"],
                "arm": row["arm"],
                "model_version": row["model_version"],
            }
        )

    def place_bookings(self) -> list[str]:
        """Put each booking on its day (once every suggestion is added); the ids placed."""
        self.placed = self._place_bookings()
        assert self.booking_days is not None
        return sorted(self.booking_days)

    def _place_bookings(self) -> tuple[dict[date, list[Booking]], list[RowProblem], int]:
        by_day: dict[date, list[Booking]] = defaultdict(list)
        unplaced: list[RowProblem] = []
        outside = 0
        self.booking_days = {}
        for booking_id in sorted(self.first_seen):
            seen = self.first_seen[booking_id]
            day = _service_day(seen.requested, self.day_start_hour)
            if not self.in_range(day):
                outside += 1
                continue
            start = service_day_start(day, self.day_start_hour)
            requested = _minutes((seen.requested - start) / MINUTE)
            record = f"booking {booking_id!r} ({SUGGESTIONS} row {seen.row_id})"
            if not 0.0 <= requested <= self.horizon_min:
                hours = f"{start:%H:%M} plus {self.horizon_min:g} min"
                unplaced.append(
                    RowProblem(
                        record,
                        "requested_in_min",
                        f"pickup requested at {seen.requested:%Y-%m-%d %H:%M}, outside the "
                        f"service hours ({hours})",
                        day,
                    )
                )
                continue
            by_day[day].append(
                Booking(
                    id=booking_id,
                    release_min=max(_minutes((seen.clock - start) / MINUTE), 0.0),
                    pickup=seen.pickup,
                    dropoff=seen.dropoff,
                    requested_min=requested,
                    window=(
                        max(_minutes((seen.window_opens - start) / MINUTE), 0.0),
                        _minutes((seen.window_closes - start) / MINUTE),
                    ),
                    service_min=seen.service_min,
                    priority=seen.priority,
                    load=seen.load,
                    max_ride_min=seen.max_ride_min,
                )
            )
            self.booking_days[booking_id] = day
            self.days[day]  # the day exists, with or without rows of its own
        return by_day, unplaced, outside

    def add_outcome(self, row: Any, where: str | None = None) -> None:
        """Outcomes are matched once every suggestion has placed its bookings."""
        self.outcome_rows.append((row, where))

    def _attach_outcomes(self) -> None:
        assert self.booking_days is not None
        for row, where in self.outcome_rows:
            row_id = int(row["id"])
            requested = _local(row["requested_pickup_at"], self.zone)
            day = self.booking_days.get(row["booking_id"])
            if day is None:
                day = _service_day(requested, self.day_start_hour)
                if self.in_range(day):
                    reason = (
                        f"booking {row['booking_id']!r}: no used suggestion in the range showed it"
                    )
                    self._skip(OUTCOMES, row_id, reason, day, where)
                continue
            start = service_day_start(day, self.day_start_hour)
            picked_up = _local(row["picked_up_at"], self.zone)
            target = self.days[day]
            target.counts["outcomes_read"] += 1
            target.counts["outcomes_matched"] += 1
            target.outcome_rows.append(
                {
                    "outcome_id": row_id,
                    "booking_id": row["booking_id"],
                    "driver_id": row["driver_id"],
                    "requested_min": _minutes((requested - start) / MINUTE),
                    "picked_up_min": _minutes((picked_up - start) / MINUTE),
                    "pickup_delay_min": _minutes(row["pickup_delay_min"]),
                    "late": bool(row["late"]),
                    "distance_km": float(row["distance_km"]),
                    "arm": row["arm"],
                    "source": row["source"],
                    "suggested_driver_id": row["suggested_driver_id"],
                    "model_version": row["model_version"],
                }
            )

    def _travel(self, state: _Day, notes: list[str]) -> TravelConfig:
        """The travel the service played the day with (of several, the most requests'; a
        note counts the others), else the options' (a log that did not record it)."""
        if not state.travels:
            return self.travel
        (played, _), *others = state.travels.most_common()
        if others:
            other = sum(count for _, count in others)
            notes.append(
                f"{plural(other, 'request')} played with another travel model than the "
                "day's (the most requests'), rebuilt with the day's"
            )
        return played

    def _drivers(self, day: date, seen: list[DriverSeen]) -> tuple[list[Driver], list[str]]:
        start = service_day_start(day, self.day_start_hour)
        by_driver: dict[str, list[DriverSeen]] = defaultdict(list)
        for item in seen:
            by_driver[item.driver_id].append(item)
        drivers, notes = [], []
        for driver_id in sorted(by_driver):
            items = sorted(by_driver[driver_id], key=lambda s: (s.clock, s.row_id))
            first = items[0]
            shift_start = _minutes((min(s.shift_starts for s in items) - start) / MINUTE)
            shift_end = _minutes((max(s.shift_ends for s in items) - start) / MINUTE)
            shift = (max(shift_start, 0.0), min(shift_end, self.horizon_min))
            if shift[1] <= shift[0]:
                notes.append(f"driver {driver_id!r}: shift outside the service hours, left out")
                continue
            breaks = []
            for earliest, latest, duration in first.breaks:
                low = max(_minutes((earliest - start) / MINUTE), shift[0])
                high = min(_minutes((latest - start) / MINUTE), shift[1] - duration)
                if high < low:
                    notes.append(f"driver {driver_id!r}: a break outside its shift, left out")
                    continue
                breaks.append(Break(low, high, duration))
            drivers.append(
                Driver(
                    id=driver_id,
                    start=first.position,
                    shift=shift,
                    capacity=first.capacity,
                    breaks=tuple(breaks),
                )
            )
        return drivers, notes

    def result(self) -> CollectResult:
        if self.placed is None:
            self.place_bookings()
        assert self.placed is not None
        bookings_by_day, unplaced, outside = self.placed
        self._attach_outcomes()
        collected, skipped = [], []
        for day in sorted(self.days):
            state = self.days[day]
            state.suggestion_ids.sort()
            outcome_rows = sorted(state.outcome_rows, key=lambda o: o["outcome_id"])
            outcome_ids = [o["outcome_id"] for o in outcome_rows]
            day_bookings = sorted(bookings_by_day[day], key=lambda b: (b.requested_min, b.id))
            drivers, notes = self._drivers(day, state.drivers)
            travel = self._travel(state, notes)
            left_out = [p for p in unplaced if p.day == day]
            if left_out:
                notes.append(
                    f"{plural(len(left_out), 'booking')} requested outside the service hours, "
                    "left out"
                )
            reason = None
            if not drivers:
                reason = "no driver on shift during the service hours"
            elif len(day_bookings) < self.min_bookings:
                reason = (
                    f"{plural(len(day_bookings), 'booking')}, fewer than the "
                    f"{self.min_bookings} a day needs (--min-bookings)"
                )
            scenario = None
            if reason is None:
                try:
                    scenario = Scenario(
                        name=f"service-{day.isoformat()}",
                        coords="latlon",
                        horizon_min=float(self.horizon_min),
                        drivers=tuple(drivers),
                        bookings=tuple(day_bookings),
                        travel=travel,
                        shared_rides=any(d.shared_rides for d in state.drivers),
                    )
                except ScenarioError as error:
                    reason = f"not a valid scenario: {error}"
            if scenario is None:
                skipped.append(
                    SkippedDay(
                        day,
                        str(reason),
                        tuple(left_out),
                        suggestion_ids=tuple(state.suggestion_ids),
                        outcome_ids=tuple(outcome_ids),
                        counts=dict(state.counts),
                    )
                )
                continue
            source = {
                "kind": "service_log",
                "day": day.isoformat(),
                "timezone": self.timezone,
                "day_start_hour": self.day_start_hour,
                "provenance": {
                    "suggestion_ids": list(state.suggestion_ids),
                    "outcome_ids": outcome_ids,
                },
                "decisions": sorted(state.decisions, key=lambda d: d["suggestion_id"]),
                "outcomes": outcome_rows,
            }
            collected.append(
                CollectedDay(day, scenario, tuple(notes), source=source, counts=dict(state.counts))
            )
        totals = dict.fromkeys(COUNT_NAMES, 0)
        for state in self.days.values():
            for name in COUNT_NAMES:
                totals[name] += state.counts[name]
        totals["bookings_outside_range"] = outside
        rows = sorted(self.skipped_rows, key=_skipped_order)
        return CollectResult(
            tuple(collected),
            tuple(skipped),
            tuple(p for p in unplaced if not any(p in s.problems for s in skipped)),
            skipped_rows=tuple(rows),
            totals=totals,
        )


def _skipped_order(row: SkippedRow) -> tuple[bool, bool, int, str]:
    """Suggestions, then outcomes; by id, then archive lines without one by file and line."""
    return (row.table != SUGGESTIONS, row.row_id is None, row.row_id or 0, row.archive or "")
