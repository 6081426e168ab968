"""Reading the days from the history database (and filling it with synthetic days)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Engine, and_, func, inspect, or_, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.orm import Session

from rldispatch.domain import Driver, Places, Scenario, TravelConfig
from rldispatch.scenarios.history.day_building import (
    BOOKING_DEFAULTS,
    MINUTE,
    SHIFT_PLACE_FIELDS,
    WITHDRAWN_STATUSES,
    BookingRow,
    ShiftRow,
    assemble_days,
    check_date_range,
    check_day_shape,
    service_day_start,
    travel_for,
)
from rldispatch.scenarios.history.results import CollectResult, RowProblem
from rldispatch.scenarios.history.schema import (
    OPTIONAL_COLUMNS,
    HistoryBase,
    HistoryBooking,
    HistoryDriver,
    HistoryError,
    HistoryShift,
    create_schema,
    engine_for,
)
from rldispatch.scenarios.presets import make_preset


def collect_days(
    engine_or_url: Engine | str | URL,
    since: date,
    until: date,
    day_start_hour: float = 6.0,
    horizon_min: float = 840.0,
    travel: TravelConfig | None = None,
    withdrawn_statuses: Iterable[str] = WITHDRAWN_STATUSES,
    shared_rides: bool = False,
) -> CollectResult:
    """Rebuild the service days ``since`` to ``until`` (inclusive) from the history tables.

    Reads only; nothing is written. A day with any malformed booking or shift is skipped whole
    (each problem reported with the booking id or driver and the field) so a partial day never
    trains the agent. ``travel`` defaults to :data:`DEFAULT_TRAVEL`; its ``start_hour`` is set
    to ``day_start_hour``. ``shared_rides`` marks the days as days whose vehicles carry several
    bookings at once. A table of an older database without the :data:`OPTIONAL_COLUMNS` is
    read as if they were empty. A plain ``postgresql://`` URL uses psycopg 3.
    """
    check_day_shape(day_start_hour, horizon_min)
    check_date_range(since, until)
    engine = engine_or_url if isinstance(engine_or_url, Engine) else engine_for(engine_or_url)
    try:
        first = service_day_start(since, day_start_hour)
        end = service_day_start(until + timedelta(days=1), day_start_hour)
        with engine.connect() as connection:
            bookings, shifts, drivers = (
                _readable_columns(connection, table)
                for table in (HistoryBooking, HistoryShift, HistoryDriver)
            )
            placed_at = func.coalesce(
                bookings["requested_pickup_at"], bookings["window_start"], bookings["window_end"]
            )
            booking_query = select(*bookings.values()).where(
                or_(placed_at.is_(None), and_(placed_at >= first, placed_at < end))
            )
            driver_columns = [
                column.label(f"of_driver_{name}")
                for name, column in drivers.items()
                if name not in ("name",)
            ]
            shift_query = (
                select(*shifts.values(), *driver_columns)
                .outerjoin_from(
                    HistoryShift.__table__,
                    HistoryDriver.__table__,
                    shifts["driver_id"] == drivers["id"],
                )
                .where(shifts["service_date"] >= since, shifts["service_date"] <= until)
            )
            booking_rows = [
                _booking_from_record(record)
                for record in connection.execute(booking_query).mappings()
            ]
            shift_rows = [
                _shift_from_record(record) for record in connection.execute(shift_query).mappings()
            ]
    finally:
        if engine is not engine_or_url:
            engine.dispose()
    return assemble_days(
        booking_rows,
        shift_rows,
        since=since,
        until=until,
        day_start_hour=day_start_hour,
        horizon_min=horizon_min,
        travel=travel_for(travel, day_start_hour),
        withdrawn_statuses=frozenset(status.lower() for status in withdrawn_statuses),
        shared_rides=shared_rides,
    )


class _Record:
    """One database row: reads its numbers, collecting values that are not (SQLite keeps
    whatever was written, a text in a number column too) instead of failing on them."""

    def __init__(self, values: Mapping[str, Any], label: str) -> None:
        self.values = values
        self.label = label
        self.problems: list[RowProblem] = []

    def number(self, field: str, column: str | None = None) -> float | None:
        """The column ``column`` (default ``field``) as a float; None when empty, absent or
        not a number (then a problem on ``field``)."""
        value = self.values.get(column or field)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            self.problems.append(RowProblem(self.label, field, f"not a number: {value!r}"))
            return None

    def integer(self, field: str, column: str | None = None) -> int | None:
        """As :meth:`number`, for a whole number."""
        value = self.values.get(column or field)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        number = self.number(field, column)
        if number is None:
            return None
        if not number.is_integer():
            self.problems.append(RowProblem(self.label, field, f"not a whole number: {value!r}"))
            return None
        return int(number)


def _readable_columns(connection: Connection, model: type[HistoryBase]) -> dict[str, Column]:
    """The columns of ``model``'s table the database has, by name: every column but the
    :data:`OPTIONAL_COLUMNS` must be there."""
    table = model.__table__
    try:
        present = {column["name"] for column in inspect(connection).get_columns(table.name)}
    except NoSuchTableError:
        raise HistoryError(
            f"{table.name}: no such table (create the tables with "
            "rldispatch.scenarios.history.create_schema)"
        ) from None
    optional = OPTIONAL_COLUMNS.get(table.name, ())
    missing = [c.name for c in table.columns if c.name not in present and c.name not in optional]
    if missing:
        raise HistoryError(f"{table.name}: no column {', '.join(missing)}")
    return {column.name: column for column in table.columns if column.name in present}


def _booking_from_record(values: Mapping[str, Any]) -> BookingRow:
    """A booking row; an optional column the table lacks or leaves empty is absent (no
    places of the kind, no ride limit)."""
    record = _Record(values, f"booking {values['id']!r}")
    row = BookingRow(
        record=record.label,
        id=values["id"],
        created_at=values["created_at"],
        requested_pickup_at=values["requested_pickup_at"],
        window_start=values["window_start"],
        window_end=values["window_end"],
        pickup_lat=record.number("pickup_lat"),
        pickup_lon=record.number("pickup_lon"),
        dropoff_lat=record.number("dropoff_lat"),
        dropoff_lon=record.number("dropoff_lon"),
        service_min=record.number("service_min"),
        priority=record.integer("priority"),
        load=record.integer("load"),
        status=values["status"] or BOOKING_DEFAULTS["status"],
        wheelchair_load=record.integer("wheelchair_load") or 0,
        stretcher_load=record.integer("stretcher_load") or 0,
        max_ride_min=record.number("max_ride_min"),
    )
    row.parse_problems = tuple(record.problems)
    return row


def _shift_from_record(values: Mapping[str, Any]) -> ShiftRow:
    """A shift starts at its own location if it has one, else at the driver's home; its
    vehicle is its own when it gives any of its places (an empty one: none of that kind),
    else the driver's."""
    driver_id = values["driver_id"]
    record = _Record(values, f"shift {values['id']} of driver {driver_id!r}")
    if values["of_driver_id"] is None:
        problem = RowProblem(record.label, "driver_id", "no such driver in history_drivers")
        return ShiftRow(
            record.label,
            driver_id,
            values["service_date"],
            None,
            None,
            None,
            None,
            None,
            parse_problems=(problem,),
        )
    has_start = values["start_lat"] is not None or values["start_lon"] is not None
    lat, lon = (
        ("start_lat", "start_lon") if has_start else ("of_driver_home_lat", "of_driver_home_lon")
    )
    own_vehicle = any(values.get(name) is not None for name in SHIFT_PLACE_FIELDS)
    vehicle = {
        name: record.integer(name, name if own_vehicle else f"of_driver_{name}")
        for name in SHIFT_PLACE_FIELDS
    }
    row = ShiftRow(
        record=record.label,
        driver_id=driver_id,
        service_date=values["service_date"],
        start_at=values["start_at"],
        end_at=values["end_at"],
        start_lat=record.number("start_lat", lat),
        start_lon=record.number("start_lon", lon),
        capacity=(vehicle["capacity"] or 0) if own_vehicle else vehicle["capacity"],
        wheelchair_capacity=vehicle["wheelchair_capacity"] or 0,
        stretcher_capacity=vehicle["stretcher_capacity"] or 0,
        break_earliest_at=values.get("break_earliest_at"),
        break_latest_at=values.get("break_latest_at"),
        break_duration_min=record.number("break_duration_min"),
    )
    row.parse_problems = tuple(record.problems)
    return row


def write_synthetic_history(
    engine: Engine, days: Sequence[date], seed: int = 0, preset: str = "geneva"
) -> list[Scenario]:
    """Fill the history tables with ``preset`` days: day ``i`` is seed ``seed + i``.

    Creates the tables if needed. Booking ids get the date as prefix (``2025-10-20-b1``) to be
    unique across days; advance bookings are created the afternoon before. A driver's vehicle
    is written on ``history_drivers`` as it is on the first day; a shift whose vehicle differs
    gives its own places. Returns the days as :func:`collect_days` should rebuild them (with
    its defaults, and ``shared_rides`` as the preset's days have it), for round-trip checks.
    """
    create_schema(engine)
    expected = []
    with Session(engine) as session, session.begin():
        scenarios = [make_preset(preset, seed + index) for index in range(len(days))]
        vehicles: dict[str, Places] = {}
        for scenario in scenarios:
            for driver in scenario.drivers:
                vehicles.setdefault(driver.id, driver.capacity)
        for driver_id, capacity in vehicles.items():
            home = next(d.start for s in scenarios for d in s.drivers if d.id == driver_id)
            session.merge(
                HistoryDriver(
                    id=driver_id,
                    name=f"Driver {driver_id}",
                    home_lat=home[0],
                    home_lon=home[1],
                    capacity=capacity.seated,
                    wheelchair_capacity=capacity.wheelchair,
                    stretcher_capacity=capacity.stretcher,
                )
            )
        session.flush()
        for day, scenario in zip(days, scenarios, strict=True):
            day_start = service_day_start(day, scenario.travel.start_hour)
            for driver in scenario.drivers:
                session.add(_synthetic_shift(driver, day, day_start, vehicles[driver.id]))
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
                        load=booking.load.seated,
                        wheelchair_load=booking.load.wheelchair,
                        stretcher_load=booking.load.stretcher,
                        max_ride_min=booking.max_ride_min,
                        status="booked",
                    )
                )
                renamed.append(replace(booking, id=booking_id))
            drivers = tuple(replace(d, breaks=d.breaks[:1]) for d in scenario.drivers)
            expected.append(
                replace(
                    scenario,
                    name=f"history-{day.isoformat()}",
                    drivers=drivers,
                    bookings=tuple(renamed),
                )
            )
    return expected


def _synthetic_shift(driver: Driver, day: date, day_start: datetime, usual: Places) -> HistoryShift:
    """The shift row of a preset's driver: its own places only when its vehicle is not the
    driver's usual one, its first break (history shifts hold one)."""
    own = driver.capacity != usual
    pause = driver.breaks[0] if driver.breaks else None
    return HistoryShift(
        driver_id=driver.id,
        service_date=day,
        start_at=day_start + driver.shift[0] * MINUTE,
        end_at=day_start + driver.shift[1] * MINUTE,
        start_lat=driver.start[0],
        start_lon=driver.start[1],
        capacity=driver.capacity.seated if own else None,
        wheelchair_capacity=driver.capacity.wheelchair if own else None,
        stretcher_capacity=driver.capacity.stretcher if own else None,
        break_earliest_at=None if pause is None else day_start + pause.earliest_min * MINUTE,
        break_latest_at=None if pause is None else day_start + pause.latest_min * MINUTE,
        break_duration_min=None if pause is None else pause.duration_min,
    )
