"""Rows, whatever their source, checked and turned into one scenario per service day."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from rldispatch.domain import (
    MAX_MINUTES,
    PLACE_KINDS,
    Booking,
    Break,
    Driver,
    Places,
    Scenario,
    ScenarioError,
    TravelConfig,
)
from rldispatch.scenarios.history.results import (
    CollectedDay,
    CollectResult,
    RowProblem,
    SkippedDay,
)
from rldispatch.scenarios.history.schema import HistoryError
from rldispatch.scenarios.presets import GENEVA_SPEED_FACTOR, GenevaConfig
from rldispatch.text import plural

MINUTE = timedelta(minutes=1)
WITHDRAWN_STATUSES = frozenset({"cancelled"})
"""Booking statuses that mean the customer withdrew the booking: not part of the day's demand."""
DEFAULT_TRAVEL = TravelConfig(
    speed_kmh=GenevaConfig.speed_kmh,
    detour=GenevaConfig.detour,
    start_hour=GenevaConfig.start_hour,
    hourly_speed_factor=GENEVA_SPEED_FACTOR,
)
"""Travel model of collected days unless one is given: the Geneva preset's speeds."""

BOOKING_DEFAULTS: dict[str, Any] = {
    "service_min": 2.0,
    "priority": 0,
    "load": 1,
    "status": "booked",
}


@dataclass
class BookingRow:
    record: str
    id: str
    created_at: datetime | None
    requested_pickup_at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    pickup_lat: float | None
    pickup_lon: float | None
    dropoff_lat: float | None
    dropoff_lon: float | None
    service_min: float | None
    priority: int | None
    load: int | None
    status: str
    wheelchair_load: int | None = 0
    stretcher_load: int | None = 0
    max_ride_min: float | None = None
    parse_problems: tuple[RowProblem, ...] = ()

    def placing_time(self) -> tuple[str, datetime] | None:
        """The field and time that tell the row's service day (the same order as the database
        query)."""
        for name in ("requested_pickup_at", "window_start", "window_end"):
            value = getattr(self, name)
            if isinstance(value, datetime):
                return name, value
        return None


@dataclass
class ShiftRow:
    record: str
    driver_id: str
    service_date: date | None
    start_at: datetime | None
    end_at: datetime | None
    start_lat: float | None
    start_lon: float | None
    capacity: int | None
    wheelchair_capacity: int | None = 0
    stretcher_capacity: int | None = 0
    break_earliest_at: datetime | None = None
    break_latest_at: datetime | None = None
    break_duration_min: float | None = None
    parse_problems: tuple[RowProblem, ...] = ()


BOOKING_PLACE_FIELDS = ("load", "wheelchair_load", "stretcher_load")
"""A booking's places by kind, in the order of :data:`PLACE_KINDS`."""
SHIFT_PLACE_FIELDS = ("capacity", "wheelchair_capacity", "stretcher_capacity")
"""A shift's vehicle's places by kind, in the order of :data:`PLACE_KINDS`."""
BREAK_FIELDS = ("break_earliest_at", "break_latest_at", "break_duration_min")


@dataclass(frozen=True)
class _Shift:
    driver_id: str
    start: tuple[float, float]
    shift_min: tuple[float, float]
    capacity: Places
    record: str
    break_min: tuple[float, float, float] | None = None
    """The break's earliest start, latest start and duration, in minutes of the day."""


FIRST_YEAR, LAST_YEAR = 1900, 2999
"""History dates and times outside these years are refused (a year 0001 or 9999 is an
export's placeholder, and date arithmetic near those ends overflows)."""


def year_problem(moment: date) -> str | None:
    """Why ``moment`` (a date or a date and time) is outside the history's years, or None."""
    if FIRST_YEAR <= moment.year <= LAST_YEAR:
        return None
    return f"{moment} is outside the years {FIRST_YEAR} to {LAST_YEAR}"


def check_date_range(since: date | None, until: date | None) -> None:
    """Refuse a range of service days outside the history's years, or one that ends first."""
    for option, value in (("since", since), ("until", until)):
        problem = year_problem(value) if value is not None else None
        if problem:
            raise HistoryError(f"{option}: {problem}")
    if since is not None and until is not None and until < since:
        raise HistoryError(f"until ({until}) is before since ({since})")


def service_day_start(day: date, day_start_hour: float) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(hours=day_start_hour)


def _service_day(moment: datetime, day_start_hour: float) -> date:
    return (moment.replace(tzinfo=None) - timedelta(hours=day_start_hour)).date()


def check_day_shape(day_start_hour: float, horizon_min: float) -> None:
    if not (math.isfinite(day_start_hour) and 0.0 <= day_start_hour < 24.0):
        raise HistoryError(f"day_start_hour: must be in [0, 24), got {day_start_hour}")
    if not (math.isfinite(horizon_min) and 0.0 < horizon_min <= 1440.0):
        raise HistoryError(f"horizon_min: must be in (0, 1440], got {horizon_min}")


def _service_hours(day: date, day_start_hour: float, horizon_min: float) -> str:
    start = service_day_start(day, day_start_hour)
    end = start + horizon_min * MINUTE
    return f"{start:%H:%M} to {end:%H:%M}"


def _check_moments(
    row: BookingRow | ShiftRow,
    names: Sequence[str],
    day_start: datetime,
    problem: Callable[[str, str], None],
    reported: set[str],
) -> dict[str, float]:
    """Minutes from the start of the day of each named time, reporting missing ones."""
    minutes = {}
    for name in names:
        if name in reported:
            continue
        value = getattr(row, name)
        if value is None:
            problem(name, "missing")
        elif value.tzinfo is not None:
            problem(name, f"{value} has a time zone; history times are local wall-clock times")
        elif year_problem(value):
            problem(name, str(year_problem(value)))
        else:
            minutes[name] = (value - day_start) / MINUTE
    return minutes


def _check_coordinate(
    value: float | None, name: str, limit: float, problem: Callable[[str, str], None]
) -> None:
    if value is None:
        problem(name, "missing")
    elif not math.isfinite(value):
        problem(name, f"not a finite number ({value})")
    elif not -limit <= value <= limit:
        problem(name, f"{value} is outside [-{limit:g}, {limit:g}]")


def _check_places(
    row: BookingRow | ShiftRow,
    names: Sequence[str],
    reported: set[str],
    problem: Callable[[str, str], None],
) -> Places | None:
    """The places by kind of the fields ``names`` (seated first); None after a problem.

    Seated places alone must be at least 1 (as before places had kinds); with places of
    another kind, seated may be 0. No kind may be negative."""
    if any(name in reported for name in names):
        return None
    seated_name, *other_names = names
    counts = [getattr(row, name) for name in names]
    if counts[0] is None:
        problem(seated_name, "missing")
        return None
    others = [count or 0 for count in counts[1:]]
    fine = True
    for name, count in zip(other_names, others, strict=True):
        if count < 0:
            problem(name, f"must be 0 or more places, got {count}")
            fine = False
    if not any(others):
        if counts[0] < 1:
            problem(seated_name, f"must be at least 1 seat, got {counts[0]}")
            return None
    elif counts[0] < 0:
        problem(seated_name, f"must be 0 or more seats, got {counts[0]}")
        return None
    return Places(int(counts[0]), *(int(count) for count in others)) if fine else None


def _check_positive_minutes(
    value: float | None, name: str, problem: Callable[[str, str], None]
) -> bool:
    if value is None:
        problem(name, "missing")
    elif not (math.isfinite(value) and 0 < value <= MAX_MINUTES):
        problem(name, f"must be a finite number of minutes > 0 and <= {MAX_MINUTES:g}, got {value}")
    else:
        return True
    return False


def _check_booking(
    row: BookingRow, day: date, day_start_hour: float, horizon_min: float
) -> tuple[Booking | None, list[RowProblem]]:
    problems = [replace(p, day=day) for p in row.parse_problems]
    reported = {p.field for p in problems}

    def problem(name: str, message: str) -> None:
        problems.append(RowProblem(row.record, name, message, day))

    if not row.id and "id" not in reported:
        problem("id", "missing")
    day_start = service_day_start(day, day_start_hour)
    names = ("created_at", "requested_pickup_at", "window_start", "window_end")
    minutes = _check_moments(row, names, day_start, problem, reported)
    for name in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"):
        if name not in reported:
            limit = 90.0 if name.endswith("lat") else 180.0
            _check_coordinate(getattr(row, name), name, limit, problem)
    if "service_min" in reported:
        pass
    elif row.service_min is None:
        problem("service_min", "missing")
    elif not (math.isfinite(row.service_min) and row.service_min >= 0):
        problem("service_min", f"must be a finite number of minutes >= 0, got {row.service_min}")
    if "priority" not in reported and row.priority not in (0, 1):
        problem("priority", f"must be 0 (normal) or 1 (urgent), got {row.priority}")
    load = _check_places(row, BOOKING_PLACE_FIELDS, reported, problem)
    if row.max_ride_min is not None and "max_ride_min" not in reported:
        _check_positive_minutes(row.max_ride_min, "max_ride_min", problem)
    if problems or load is None:
        return None, problems

    requested = minutes["requested_pickup_at"]
    window_start, window_end = minutes["window_start"], minutes["window_end"]
    created = minutes["created_at"]
    if window_end < window_start:
        problem(
            "window_end",
            f"the window ends ({row.window_end}) before it starts ({row.window_start})",
        )
    if not 0.0 <= requested <= horizon_min:
        hours = _service_hours(day, day_start_hour, horizon_min)
        problem(
            "requested_pickup_at",
            f"{row.requested_pickup_at} is outside the service hours ({hours})",
        )
    elif window_end < 0.0:
        problem("window_end", f"{row.window_end} is before the service day starts")
    if created > window_end:
        problem("created_at", f"created ({row.created_at}) after its window closed")
    if problems:
        return None, problems
    booking = Booking(
        id=row.id,
        release_min=max(created, 0.0),
        pickup=(float(row.pickup_lat), float(row.pickup_lon)),
        dropoff=(float(row.dropoff_lat), float(row.dropoff_lon)),
        requested_min=requested,
        window=(max(window_start, 0.0), window_end),
        service_min=float(row.service_min),
        priority=int(row.priority),
        load=load,
        max_ride_min=None if row.max_ride_min is None else float(row.max_ride_min),
    )
    return booking, []


def _check_shift(
    row: ShiftRow, day: date, day_start_hour: float, horizon_min: float
) -> tuple[_Shift | None, list[RowProblem]]:
    problems = [replace(p, day=day) for p in row.parse_problems]
    reported = {p.field for p in problems}

    def problem(name: str, message: str) -> None:
        problems.append(RowProblem(row.record, name, message, day))

    if "driver_id" in reported:
        return None, problems
    if not row.driver_id:
        problem("driver_id", "missing")
    day_start = service_day_start(day, day_start_hour)
    minutes = _check_moments(row, ("start_at", "end_at"), day_start, problem, reported)
    for name, limit in (("start_lat", 90.0), ("start_lon", 180.0)):
        if name not in reported:
            _check_coordinate(getattr(row, name), name, limit, problem)
    capacity = _check_places(row, SHIFT_PLACE_FIELDS, reported, problem)
    if not problems and minutes["end_at"] <= minutes["start_at"]:
        problem("end_at", f"the shift ends ({row.end_at}) before it starts ({row.start_at})")
    break_min = _check_break(row, day_start, minutes, problem, reported)
    if problems or capacity is None:
        return None, problems
    return (
        _Shift(
            driver_id=row.driver_id,
            start=(float(row.start_lat), float(row.start_lon)),
            shift_min=(minutes["start_at"], minutes["end_at"]),
            capacity=capacity,
            record=row.record,
            break_min=break_min,
        ),
        [],
    )


def _check_break(
    row: ShiftRow,
    day_start: datetime,
    shift_minutes: dict[str, float],
    problem: Callable[[str, str], None],
    reported: set[str],
) -> tuple[float, float, float] | None:
    """The shift's break (earliest start, latest start, duration) in minutes of the day, or
    None without one; a break given in part, or not within its shift, is a problem."""
    given = [name for name in BREAK_FIELDS if getattr(row, name) is not None or name in reported]
    if not given:
        return None
    for name in BREAK_FIELDS:
        if name not in given:
            problem(name, f"missing: a break needs all of {', '.join(BREAK_FIELDS)}")
    if len(given) < len(BREAK_FIELDS):
        return None
    minutes = _check_moments(row, BREAK_FIELDS[:2], day_start, problem, reported)
    duration_ok = "break_duration_min" not in reported and _check_positive_minutes(
        row.break_duration_min, "break_duration_min", problem
    )
    if len(minutes) < 2 or not duration_ok:
        return None
    earliest, latest = minutes["break_earliest_at"], minutes["break_latest_at"]
    duration = float(row.break_duration_min)
    if latest < earliest:
        problem(
            "break_latest_at",
            f"the break's latest start ({row.break_latest_at}) is before its earliest "
            f"({row.break_earliest_at})",
        )
        return None
    if len(shift_minutes) < 2:
        return None
    if earliest < shift_minutes["start_at"]:
        problem(
            "break_earliest_at",
            f"{row.break_earliest_at} is before the shift starts ({row.start_at})",
        )
        return None
    if latest + duration > shift_minutes["end_at"]:
        problem(
            "break_latest_at",
            f"a break from {row.break_latest_at} for {duration:g} min ends after the shift "
            f"({row.end_at})",
        )
        return None
    return earliest, latest, duration


def _natural_key(identifier: str) -> list[Any]:
    """Sort key that puts ``d2`` before ``d10``."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", identifier)
    ]


def _day_drivers(
    shifts: list[_Shift], day: date, horizon_min: float
) -> tuple[list[Driver], list[RowProblem], list[str]]:
    """Drivers on shift, clipped to the service hours; a driver's second shift is ``id#2``."""
    drivers, problems, notes = [], [], []
    by_driver: dict[str, list[_Shift]] = defaultdict(list)
    for shift in shifts:
        by_driver[shift.driver_id].append(shift)
    for driver_id in sorted(by_driver, key=_natural_key):
        ordered = sorted(by_driver[driver_id], key=lambda s: s.shift_min)
        kept = 0
        for index, shift in enumerate(ordered):
            if index and shift.shift_min[0] < ordered[index - 1].shift_min[1]:
                problems.append(
                    RowProblem(
                        shift.record, "start_at", "overlaps another shift of the same driver", day
                    )
                )
                continue
            start_min = max(shift.shift_min[0], 0.0)
            end_min = min(shift.shift_min[1], horizon_min)
            if end_min <= start_min:
                notes.append(f"{shift.record}: outside the service hours, left out")
                continue
            kept += 1
            breaks: tuple[Break, ...] = ()
            if shift.break_min is not None:
                earliest, latest, duration = shift.break_min
                earliest, latest = max(earliest, start_min), min(latest, end_min - duration)
                if latest < earliest:
                    notes.append(
                        f"{shift.record}: its break is outside the service hours, left out"
                    )
                else:
                    breaks = (Break(earliest, latest, duration),)
            drivers.append(
                Driver(
                    id=driver_id if kept == 1 else f"{driver_id}#{kept}",
                    start=shift.start,
                    shift=(start_min, end_min),
                    capacity=shift.capacity,
                    breaks=breaks,
                )
            )
    return drivers, problems, notes


def _place_problems(
    bookings: Sequence[tuple[str, Booking]], drivers: Sequence[Driver], day: date
) -> list[RowProblem]:
    """Bookings with wheelchair or stretcher places that no vehicle of the day can carry: a
    kind no vehicle has (enough of), or all of the booking's places in no single vehicle."""
    if not drivers:
        return []
    most = {kind: max(getattr(driver.capacity, kind) for driver in drivers) for kind in PLACE_KINDS}
    problems = []
    for record, booking in bookings:
        load = booking.load
        if not (load.wheelchair or load.stretcher):
            continue
        short = False
        for kind, name in zip(PLACE_KINDS[1:], BOOKING_PLACE_FIELDS[1:], strict=True):
            need = getattr(load, kind)
            if need > most[kind]:
                short = True
                has = f"more than {most[kind]}" if most[kind] else "one"
                problems.append(
                    RowProblem(
                        record,
                        name,
                        f"needs {plural(need, f'{kind} place')}; no shift on its day has {has}",
                        day,
                    )
                )
        if not short and not any(load.fits_in(driver.capacity) for driver in drivers):
            counts = zip(PLACE_KINDS, load.as_tuple(), strict=True)
            places = ", ".join(f"{count} {kind}" for kind, count in counts if count)
            problems.append(
                RowProblem(
                    record,
                    "load",
                    f"needs {places} places together; no shift on its day has room for all",
                    day,
                )
            )
    return problems


def _malformed_reason(problems: Sequence[RowProblem], shown: int = 3) -> str:
    listed = "; ".join(str(problem) for problem in problems[:shown])
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{plural(len(problems), 'malformed row')}: {listed}{more}"


def assemble_days(
    bookings: Iterable[BookingRow],
    shifts: Iterable[ShiftRow],
    *,
    since: date | None,
    until: date | None,
    day_start_hour: float,
    horizon_min: float,
    travel: TravelConfig,
    withdrawn_statuses: frozenset[str],
    shared_rides: bool = False,
) -> CollectResult:
    def in_range(day: date) -> bool:
        return (since is None or day >= since) and (until is None or day <= until)

    unplaced: list[RowProblem] = []
    bookings_by_day: dict[date, list[BookingRow]] = defaultdict(list)
    for row in bookings:
        placing = row.placing_time()
        if placing is None:
            unplaced.append(
                RowProblem(
                    row.record,
                    "requested_pickup_at",
                    "no requested pickup time nor window: its service day is unknown",
                )
            )
        elif year_problem(placing[1]):
            unplaced.append(RowProblem(row.record, placing[0], str(year_problem(placing[1]))))
        elif in_range(_service_day(placing[1], day_start_hour)):
            bookings_by_day[_service_day(placing[1], day_start_hour)].append(row)
    shifts_by_day: dict[date, list[ShiftRow]] = defaultdict(list)
    for row in shifts:
        if row.service_date is None:
            unplaced.append(
                RowProblem(row.record, "service_date", "missing: the shift's day is unknown")
            )
        elif year_problem(row.service_date):
            unplaced.append(
                RowProblem(row.record, "service_date", str(year_problem(row.service_date)))
            )
        elif in_range(row.service_date):
            shifts_by_day[row.service_date].append(row)

    collected, skipped = [], []
    for day in sorted(set(bookings_by_day) | set(shifts_by_day)):
        problems: list[RowProblem] = []
        notes: list[str] = []
        day_bookings = []
        records: list[tuple[str, Booking]] = []
        withdrawn: dict[str, int] = defaultdict(int)
        for row in sorted(bookings_by_day[day], key=lambda r: r.id):
            status = row.status.strip().lower()
            if status in withdrawn_statuses:
                withdrawn[status] += 1
                continue
            booking, row_problems = _check_booking(row, day, day_start_hour, horizon_min)
            problems.extend(row_problems)
            if booking is not None:
                day_bookings.append(booking)
                records.append((row.record, booking))
        notes.extend(
            f"{plural(count, 'booking')} with status {status!r} left out (withdrawn)"
            for status, count in sorted(withdrawn.items())
        )
        day_shifts = []
        fleet_problems = []
        for row in shifts_by_day[day]:
            shift, row_problems = _check_shift(row, day, day_start_hour, horizon_min)
            fleet_problems.extend(row_problems)
            if shift is not None:
                day_shifts.append(shift)
        drivers, shift_problems, shift_notes = _day_drivers(day_shifts, day, horizon_min)
        fleet_problems.extend(shift_problems)
        problems.extend(fleet_problems)
        notes.extend(shift_notes)
        if not fleet_problems:  # a malformed shift leaves the fleet unknown: nothing to match
            problems.extend(_place_problems(records, drivers, day))
        if problems:
            skipped.append(SkippedDay(day, _malformed_reason(problems), tuple(problems)))
            continue
        if not drivers:
            skipped.append(SkippedDay(day, "no driver on shift during the service hours"))
            continue
        if not day_bookings:
            skipped.append(SkippedDay(day, "no bookings"))
            continue
        day_bookings.sort(key=lambda b: (b.requested_min, b.id))
        try:
            scenario = Scenario(
                name=f"history-{day.isoformat()}",
                coords="latlon",
                horizon_min=float(horizon_min),
                drivers=tuple(drivers),
                bookings=tuple(day_bookings),
                travel=travel,
                shared_rides=shared_rides,
            )
        except ScenarioError as error:
            skipped.append(SkippedDay(day, f"not a valid scenario: {error}"))
            continue
        collected.append(CollectedDay(day, scenario, tuple(notes)))
    return CollectResult(tuple(collected), tuple(skipped), tuple(unplaced))


def travel_for(travel: TravelConfig | None, day_start_hour: float) -> TravelConfig:
    return replace(travel or DEFAULT_TRAVEL, start_hour=float(day_start_hour))
