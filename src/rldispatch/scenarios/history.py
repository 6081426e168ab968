"""The company's own days: its history database (or a CSV export) turned into scenarios.

Four tables, all prefixed ``history_`` so they can share a database with other tables (the
columns are listed in ``docs/history.md``): ``history_drivers``, ``history_shifts``,
``history_bookings`` and ``history_assignments`` (what the dispatchers did; :func:`collect_days`
does not read it).

Times are local wall-clock times without a zone. A service day starts at ``day_start_hour`` on
its date and lasts ``horizon_min`` minutes; a booking belongs to the day of its requested
pickup time. Turning rows into minutes from the start of the day:

- release = when the booking was created; created before the day starts means known at the
  start of the day (0);
- the window's start is clipped to 0 the same way; a requested pickup time outside the service
  hours is a malformed row;
- a shift is clipped to ``[0, horizon_min]``; a shift wholly outside the service hours is left
  out with a note.

Every row is checked. A day with any malformed booking or shift is skipped whole, with the
booking id (or driver) and the field reported, so a partial day never trains the agent; no row
is ever repaired silently. A day with no driver on shift, or no bookings, is skipped with its
reason. Bookings whose status is in ``WITHDRAWN_STATUSES`` (withdrawn by the customer) are
not part of the day's demand: they are left out and counted in the day's notes.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    String,
    and_,
    create_engine,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from rldispatch.domain import Booking, Driver, Scenario, ScenarioError, TravelConfig
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import GENEVA_SPEED_FACTOR, GenevaConfig, make_preset

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

BOOKING_CSV_COLUMNS = (
    "id",
    "created_at",
    "requested_pickup_at",
    "window_start",
    "window_end",
    "pickup_lat",
    "pickup_lon",
    "dropoff_lat",
    "dropoff_lon",
)
BOOKING_CSV_OPTIONAL_COLUMNS = ("service_min", "priority", "load", "status")
SHIFT_CSV_COLUMNS = ("driver_id", "service_date", "start_at", "end_at", "start_lat", "start_lon")
SHIFT_CSV_OPTIONAL_COLUMNS = ("capacity",)
BOOKING_DEFAULTS: dict[str, Any] = {
    "service_min": 2.0,
    "priority": 0,
    "load": 1,
    "status": "booked",
}


class HistoryError(ValueError):
    """A history source that cannot be read at all (bad URL, missing CSV column, bad range)."""


# --- schema ----------------------------------------------------------------------------------


class HistoryBase(DeclarativeBase):
    """Base of the history tables; its metadata holds these tables only."""


class HistoryDriver(HistoryBase):
    __tablename__ = "history_drivers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    home_lat: Mapped[float | None] = mapped_column(Double)
    home_lon: Mapped[float | None] = mapped_column(Double)
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class HistoryShift(HistoryBase):
    __tablename__ = "history_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_at: Mapped[datetime | None] = mapped_column(DateTime)
    start_lat: Mapped[float | None] = mapped_column(Double)
    start_lon: Mapped[float | None] = mapped_column(Double)


class HistoryBooking(HistoryBase):
    __tablename__ = "history_bookings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    requested_pickup_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    window_start: Mapped[datetime | None] = mapped_column(DateTime)
    window_end: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_lat: Mapped[float | None] = mapped_column(Double)
    pickup_lon: Mapped[float | None] = mapped_column(Double)
    dropoff_lat: Mapped[float | None] = mapped_column(Double)
    dropoff_lon: Mapped[float | None] = mapped_column(Double)
    service_min: Mapped[float] = mapped_column(Double, default=2.0, server_default=text("2.0"))
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    load: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(32), default="booked", server_default="booked")


class HistoryAssignment(HistoryBase):
    __tablename__ = "history_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("history_bookings.id"), index=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_at: Mapped[datetime | None] = mapped_column(DateTime)
    dropoff_at: Mapped[datetime | None] = mapped_column(DateTime)
    distance_km: Mapped[float | None] = mapped_column(Double)


def create_schema(engine: Engine) -> None:
    """Create the ``history_`` tables that do not exist yet."""
    HistoryBase.metadata.create_all(engine)


def masked_url(url: str | URL) -> str:
    """The database URL with its password hidden, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"


def _engine_for(url: str | URL) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise HistoryError(
            "not a database URL (expected e.g. postgresql+psycopg://USER@HOST:5432/DB)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).is_file()
    ):
        raise HistoryError(f"{database}: no such SQLite database file")
    return create_engine(parsed)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """One malformed row: which record, which field, what is wrong."""

    record: str
    field: str
    message: str
    day: date | None = None

    def __str__(self) -> str:
        return f"{self.record}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "record": self.record,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class CollectedDay:
    day: date
    scenario: Scenario
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "name": self.scenario.name,
            "bookings": len(self.scenario.bookings),
            "drivers": len(self.scenario.drivers),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SkippedDay:
    day: date
    reason: str
    problems: tuple[RowProblem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "reason": self.reason,
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass(frozen=True)
class CollectResult:
    """Scenarios per service day, the days skipped and why, and rows that fit no day."""

    days: tuple[CollectedDay, ...]
    skipped: tuple[SkippedDay, ...]
    unplaced: tuple[RowProblem, ...] = ()

    @property
    def scenarios(self) -> list[Scenario]:
        return [collected.scenario for collected in self.days]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [collected.as_dict() for collected in self.days],
            "skipped": [skipped.as_dict() for skipped in self.skipped],
            "unplaced": [problem.as_dict() for problem in self.unplaced],
        }


def write_scenarios(result: CollectResult, out_dir: str | Path) -> list[Path]:
    """Write one scenario file per collected day, ``YYYY-MM-DD.json``, atomically."""
    out_dir = Path(out_dir)
    return [
        save_scenario(collected.scenario, out_dir / f"{collected.day.isoformat()}.json")
        for collected in result.days
    ]


# --- rows, whatever their source -------------------------------------------------------------


@dataclass
class _BookingRow:
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
    parse_problems: tuple[RowProblem, ...] = ()

    def placing_time(self) -> datetime | None:
        """The time that tells the row's service day (the same order as the database query)."""
        for value in (self.requested_pickup_at, self.window_start, self.window_end):
            if isinstance(value, datetime):
                return value
        return None


@dataclass
class _ShiftRow:
    record: str
    driver_id: str
    service_date: date | None
    start_at: datetime | None
    end_at: datetime | None
    start_lat: float | None
    start_lon: float | None
    capacity: int | None
    parse_problems: tuple[RowProblem, ...] = ()


@dataclass(frozen=True)
class _Shift:
    driver_id: str
    start: tuple[float, float]
    shift_min: tuple[float, float]
    capacity: int
    record: str


def _day_start(day: date, day_start_hour: float) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(hours=day_start_hour)


def _service_day(moment: datetime, day_start_hour: float) -> date:
    return (moment.replace(tzinfo=None) - timedelta(hours=day_start_hour)).date()


def _check_day_shape(day_start_hour: float, horizon_min: float) -> None:
    if not (math.isfinite(day_start_hour) and 0.0 <= day_start_hour < 24.0):
        raise HistoryError(f"day_start_hour: must be in [0, 24), got {day_start_hour}")
    if not (math.isfinite(horizon_min) and 0.0 < horizon_min <= 1440.0):
        raise HistoryError(f"horizon_min: must be in (0, 1440], got {horizon_min}")


def _service_hours(day: date, day_start_hour: float, horizon_min: float) -> str:
    start = _day_start(day, day_start_hour)
    end = start + horizon_min * MINUTE
    return f"{start:%H:%M} to {end:%H:%M}"


def _check_moments(
    row: _BookingRow | _ShiftRow,
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


def _check_seats(value: int | None, name: str, problem: Callable[[str, str], None]) -> None:
    if value is None:
        problem(name, "missing")
    elif value < 1:
        problem(name, f"must be at least 1 seat, got {value}")


def _check_booking(
    row: _BookingRow, day: date, day_start_hour: float, horizon_min: float
) -> tuple[Booking | None, list[RowProblem]]:
    problems = [replace(p, day=day) for p in row.parse_problems]
    reported = {p.field for p in problems}

    def problem(name: str, message: str) -> None:
        problems.append(RowProblem(row.record, name, message, day))

    if not row.id and "id" not in reported:
        problem("id", "missing")
    day_start = _day_start(day, day_start_hour)
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
    if "load" not in reported:
        _check_seats(row.load, "load", problem)
    if problems:
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
        load=int(row.load),
    )
    return booking, []


def _check_shift(
    row: _ShiftRow, day: date, day_start_hour: float, horizon_min: float
) -> tuple[_Shift | None, list[RowProblem]]:
    problems = [replace(p, day=day) for p in row.parse_problems]
    reported = {p.field for p in problems}

    def problem(name: str, message: str) -> None:
        problems.append(RowProblem(row.record, name, message, day))

    if "driver_id" in reported:
        return None, problems
    if not row.driver_id:
        problem("driver_id", "missing")
    minutes = _check_moments(
        row, ("start_at", "end_at"), _day_start(day, day_start_hour), problem, reported
    )
    for name, limit in (("start_lat", 90.0), ("start_lon", 180.0)):
        if name not in reported:
            _check_coordinate(getattr(row, name), name, limit, problem)
    if "capacity" not in reported:
        _check_seats(row.capacity, "capacity", problem)
    if not problems and minutes["end_at"] <= minutes["start_at"]:
        problem("end_at", f"the shift ends ({row.end_at}) before it starts ({row.start_at})")
    if problems:
        return None, problems
    return (
        _Shift(
            driver_id=row.driver_id,
            start=(float(row.start_lat), float(row.start_lon)),
            shift_min=(minutes["start_at"], minutes["end_at"]),
            capacity=int(row.capacity),
            record=row.record,
        ),
        [],
    )


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
            drivers.append(
                Driver(
                    id=driver_id if kept == 1 else f"{driver_id}#{kept}",
                    start=shift.start,
                    shift=(start_min, end_min),
                    capacity=shift.capacity,
                )
            )
    return drivers, problems, notes


def _malformed_reason(problems: Sequence[RowProblem], shown: int = 3) -> str:
    listed = "; ".join(str(problem) for problem in problems[:shown])
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} malformed row(s): {listed}{more}"


def _assemble(
    bookings: Iterable[_BookingRow],
    shifts: Iterable[_ShiftRow],
    *,
    since: date | None,
    until: date | None,
    day_start_hour: float,
    horizon_min: float,
    travel: TravelConfig,
    withdrawn_statuses: frozenset[str],
) -> CollectResult:
    def in_range(day: date) -> bool:
        return (since is None or day >= since) and (until is None or day <= until)

    unplaced: list[RowProblem] = []
    bookings_by_day: dict[date, list[_BookingRow]] = defaultdict(list)
    for row in bookings:
        moment = row.placing_time()
        if moment is None:
            unplaced.append(
                RowProblem(
                    row.record,
                    "requested_pickup_at",
                    "no requested pickup time nor window: its service day is unknown",
                )
            )
        elif in_range(_service_day(moment, day_start_hour)):
            bookings_by_day[_service_day(moment, day_start_hour)].append(row)
    shifts_by_day: dict[date, list[_ShiftRow]] = defaultdict(list)
    for row in shifts:
        if row.service_date is None:
            unplaced.append(
                RowProblem(row.record, "service_date", "missing: the shift's day is unknown")
            )
        elif in_range(row.service_date):
            shifts_by_day[row.service_date].append(row)

    collected, skipped = [], []
    for day in sorted(set(bookings_by_day) | set(shifts_by_day)):
        problems: list[RowProblem] = []
        notes: list[str] = []
        day_bookings = []
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
        notes.extend(
            f"{count} booking(s) with status {status!r} left out (withdrawn)"
            for status, count in sorted(withdrawn.items())
        )
        day_shifts = []
        for row in shifts_by_day[day]:
            shift, row_problems = _check_shift(row, day, day_start_hour, horizon_min)
            problems.extend(row_problems)
            if shift is not None:
                day_shifts.append(shift)
        drivers, shift_problems, shift_notes = _day_drivers(day_shifts, day, horizon_min)
        problems.extend(shift_problems)
        notes.extend(shift_notes)
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
            )
        except ScenarioError as error:
            skipped.append(SkippedDay(day, f"not a valid scenario: {error}"))
            continue
        collected.append(CollectedDay(day, scenario, tuple(notes)))
    return CollectResult(tuple(collected), tuple(skipped), tuple(unplaced))


def _travel_for(travel: TravelConfig | None, day_start_hour: float) -> TravelConfig:
    return replace(travel or DEFAULT_TRAVEL, start_hour=float(day_start_hour))


# --- database --------------------------------------------------------------------------------


def collect_days(
    engine_or_url: Engine | str | URL,
    since: date,
    until: date,
    day_start_hour: float = 6.0,
    horizon_min: float = 840.0,
    travel: TravelConfig | None = None,
    withdrawn_statuses: Iterable[str] = WITHDRAWN_STATUSES,
) -> CollectResult:
    """Rebuild the service days ``since`` to ``until`` (inclusive) from the history tables.

    Reads only; nothing is written. A day with any malformed booking or shift is skipped whole
    (each problem reported with the booking id or driver and the field) so a partial day never
    trains the agent. ``travel`` defaults to :data:`DEFAULT_TRAVEL`; its ``start_hour`` is set
    to ``day_start_hour``. A plain ``postgresql://`` URL uses psycopg 3.
    """
    _check_day_shape(day_start_hour, horizon_min)
    if until < since:
        raise HistoryError(f"until ({until}) is before since ({since})")
    engine = engine_or_url if isinstance(engine_or_url, Engine) else _engine_for(engine_or_url)
    try:
        first = _day_start(since, day_start_hour)
        end = _day_start(until + timedelta(days=1), day_start_hour)
        placed_at = func.coalesce(
            HistoryBooking.requested_pickup_at,
            HistoryBooking.window_start,
            HistoryBooking.window_end,
        )
        booking_query = select(HistoryBooking).where(
            or_(placed_at.is_(None), and_(placed_at >= first, placed_at < end))
        )
        shift_query = (
            select(HistoryShift, HistoryDriver)
            .outerjoin(HistoryDriver, HistoryShift.driver_id == HistoryDriver.id)
            .where(HistoryShift.service_date >= since, HistoryShift.service_date <= until)
        )
        with Session(engine) as session:
            booking_rows = [
                _booking_from_record(record) for record in session.scalars(booking_query)
            ]
            shift_rows = [
                _shift_from_record(shift, driver) for shift, driver in session.execute(shift_query)
            ]
    finally:
        if engine is not engine_or_url:
            engine.dispose()
    return _assemble(
        booking_rows,
        shift_rows,
        since=since,
        until=until,
        day_start_hour=day_start_hour,
        horizon_min=horizon_min,
        travel=_travel_for(travel, day_start_hour),
        withdrawn_statuses=frozenset(status.lower() for status in withdrawn_statuses),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _booking_from_record(record: HistoryBooking) -> _BookingRow:
    return _BookingRow(
        record=f"booking {record.id!r}",
        id=record.id,
        created_at=record.created_at,
        requested_pickup_at=record.requested_pickup_at,
        window_start=record.window_start,
        window_end=record.window_end,
        pickup_lat=_optional_float(record.pickup_lat),
        pickup_lon=_optional_float(record.pickup_lon),
        dropoff_lat=_optional_float(record.dropoff_lat),
        dropoff_lon=_optional_float(record.dropoff_lon),
        service_min=_optional_float(record.service_min),
        priority=_optional_int(record.priority),
        load=_optional_int(record.load),
        status=record.status or BOOKING_DEFAULTS["status"],
    )


def _shift_from_record(shift: HistoryShift, driver: HistoryDriver | None) -> _ShiftRow:
    """A shift starts at its own location if it has one, else at the driver's home."""
    record = f"shift {shift.id} of driver {shift.driver_id!r}"
    if driver is None:
        problem = RowProblem(record, "driver_id", "no such driver in history_drivers")
        return _ShiftRow(
            record, shift.driver_id, shift.service_date, None, None, None, None, None, (problem,)
        )
    has_start = shift.start_lat is not None or shift.start_lon is not None
    return _ShiftRow(
        record=record,
        driver_id=shift.driver_id,
        service_date=shift.service_date,
        start_at=shift.start_at,
        end_at=shift.end_at,
        start_lat=_optional_float(shift.start_lat if has_start else driver.home_lat),
        start_lon=_optional_float(shift.start_lon if has_start else driver.home_lon),
        capacity=_optional_int(driver.capacity),
    )


def write_synthetic_history(engine: Engine, days: Sequence[date], seed: int = 0) -> list[Scenario]:
    """Fill the history tables with ``geneva`` preset days: day ``i`` is seed ``seed + i``.

    Creates the tables if needed. Booking ids get the date as prefix (``2025-10-20-b1``) to be
    unique across days; advance bookings are created the afternoon before. Returns the days as
    :func:`collect_days` should rebuild them (with its defaults), for round-trip checks.
    """
    create_schema(engine)
    expected = []
    with Session(engine) as session, session.begin():
        scenarios = [make_preset("geneva", seed + index) for index in range(len(days))]
        for scenario in scenarios:
            for driver in scenario.drivers:
                session.merge(
                    HistoryDriver(
                        id=driver.id,
                        name=f"Driver {driver.id}",
                        home_lat=driver.start[0],
                        home_lon=driver.start[1],
                        capacity=driver.capacity,
                    )
                )
        session.flush()
        for day, scenario in zip(days, scenarios, strict=True):
            day_start = _day_start(day, scenario.travel.start_hour)
            for driver in scenario.drivers:
                session.add(
                    HistoryShift(
                        driver_id=driver.id,
                        service_date=day,
                        start_at=day_start + driver.shift[0] * MINUTE,
                        end_at=day_start + driver.shift[1] * MINUTE,
                        start_lat=driver.start[0],
                        start_lon=driver.start[1],
                    )
                )
            renamed = []
            for booking in scenario.bookings:
                booking_id = f"{day.isoformat()}-{booking.id}"
                if booking.release_min > 0:
                    created_at = day_start + booking.release_min * MINUTE
                else:
                    created_at = day_start - timedelta(hours=16)
                session.add(
                    HistoryBooking(
                        id=booking_id,
                        created_at=created_at,
                        requested_pickup_at=day_start + booking.requested_min * MINUTE,
                        window_start=day_start + booking.window[0] * MINUTE,
                        window_end=day_start + booking.window[1] * MINUTE,
                        pickup_lat=booking.pickup[0],
                        pickup_lon=booking.pickup[1],
                        dropoff_lat=booking.dropoff[0],
                        dropoff_lon=booking.dropoff[1],
                        service_min=booking.service_min,
                        priority=booking.priority,
                        load=booking.load,
                        status="booked",
                    )
                )
                renamed.append(replace(booking, id=booking_id))
            expected.append(
                replace(scenario, name=f"history-{day.isoformat()}", bookings=tuple(renamed))
            )
    return expected


# --- CSV -------------------------------------------------------------------------------------


class _CsvRow:
    """One CSV record: parses its fields, collecting what cannot be parsed."""

    def __init__(self, values: dict[str, str | None], record: str) -> None:
        self.values = values
        self.record = record
        self.problems: list[RowProblem] = []

    def text(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    def _parse(self, name: str, parse: Callable[[str], Any], expected: str, default: Any) -> Any:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(RowProblem(self.record, name, f"not {expected}: {raw!r}"))
            return default

    def moment(self, name: str) -> datetime | None:
        return self._parse(
            name, datetime.fromisoformat, "a date and time like 2025-10-20 08:30", None
        )

    def day(self, name: str) -> date | None:
        return self._parse(name, date.fromisoformat, "a date like 2025-10-20", None)

    def number(self, name: str, default: float | None = None) -> float | None:
        return self._parse(name, float, "a number", default)

    def integer(self, name: str, default: int) -> int:
        def parse(raw: str) -> int:
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)

        return self._parse(name, parse, "a whole number", default)


def _read_csv(path: Path, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str | None]]]:
    if not path.is_file():
        raise HistoryError(f"{path}: no such CSV file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in columns]
        if missing:
            raise HistoryError(f"{path}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = columns
        rows = []
        for values in reader:
            rows.append((reader.line_num, values))
    return rows


def _bookings_from_csv(path: Path) -> list[_BookingRow]:
    rows = []
    first_line: dict[str, int] = {}
    for line, values in _read_csv(path, BOOKING_CSV_COLUMNS):
        booking_id = (values.get("id") or "").strip()
        csv_row = _CsvRow(values, f"{path.name} line {line}, booking {booking_id!r}")
        if booking_id in first_line:
            csv_row.problems.append(
                RowProblem(
                    csv_row.record, "id", f"used twice (first on line {first_line[booking_id]})"
                )
            )
        elif booking_id:
            first_line[booking_id] = line
        row = _BookingRow(
            record=csv_row.record,
            id=booking_id,
            created_at=csv_row.moment("created_at"),
            requested_pickup_at=csv_row.moment("requested_pickup_at"),
            window_start=csv_row.moment("window_start"),
            window_end=csv_row.moment("window_end"),
            pickup_lat=csv_row.number("pickup_lat"),
            pickup_lon=csv_row.number("pickup_lon"),
            dropoff_lat=csv_row.number("dropoff_lat"),
            dropoff_lon=csv_row.number("dropoff_lon"),
            service_min=csv_row.number("service_min", BOOKING_DEFAULTS["service_min"]),
            priority=csv_row.integer("priority", BOOKING_DEFAULTS["priority"]),
            load=csv_row.integer("load", BOOKING_DEFAULTS["load"]),
            status=csv_row.text("status") or BOOKING_DEFAULTS["status"],
        )
        row.parse_problems = tuple(csv_row.problems)
        rows.append(row)
    return rows


def _shifts_from_csv(path: Path) -> list[_ShiftRow]:
    rows = []
    for line, values in _read_csv(path, SHIFT_CSV_COLUMNS):
        driver_id = (values.get("driver_id") or "").strip()
        csv_row = _CsvRow(values, f"{path.name} line {line}, driver {driver_id!r}")
        row = _ShiftRow(
            record=csv_row.record,
            driver_id=driver_id,
            service_date=csv_row.day("service_date"),
            start_at=csv_row.moment("start_at"),
            end_at=csv_row.moment("end_at"),
            start_lat=csv_row.number("start_lat"),
            start_lon=csv_row.number("start_lon"),
            capacity=csv_row.integer("capacity", 1),
        )
        row.parse_problems = tuple(csv_row.problems)
        rows.append(row)
    return rows


def collect_csv(
    bookings_csv: str | Path,
    shifts_csv: str | Path,
    since: date | None = None,
    until: date | None = None,
    day_start_hour: float = 6.0,
    horizon_min: float = 840.0,
    travel: TravelConfig | None = None,
    withdrawn_statuses: Iterable[str] = WITHDRAWN_STATUSES,
) -> CollectResult:
    """Rebuild service days from a bookings CSV and a shifts CSV (see ``docs/history.md``).

    The same checks as :func:`collect_days`: a day with any malformed row is skipped whole, each
    problem reported with its line, booking id or driver, and field. Without ``since`` or
    ``until`` every day in the files is collected.
    """
    _check_day_shape(day_start_hour, horizon_min)
    if since is not None and until is not None and until < since:
        raise HistoryError(f"until ({until}) is before since ({since})")
    return _assemble(
        _bookings_from_csv(Path(bookings_csv)),
        _shifts_from_csv(Path(shifts_csv)),
        since=since,
        until=until,
        day_start_hour=day_start_hour,
        horizon_min=horizon_min,
        travel=_travel_for(travel, day_start_hour),
        withdrawn_statuses=frozenset(status.lower() for status in withdrawn_statuses),
    )
