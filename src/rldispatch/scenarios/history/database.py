"""Reading the days from the history database (and filling it with synthetic days)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from rldispatch.domain import Scenario, TravelConfig
from rldispatch.scenarios.history.day_building import (
    BOOKING_DEFAULTS,
    MINUTE,
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
    HistoryBooking,
    HistoryDriver,
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
) -> CollectResult:
    """Rebuild the service days ``since`` to ``until`` (inclusive) from the history tables.

    Reads only; nothing is written. A day with any malformed booking or shift is skipped whole
    (each problem reported with the booking id or driver and the field) so a partial day never
    trains the agent. ``travel`` defaults to :data:`DEFAULT_TRAVEL`; its ``start_hour`` is set
    to ``day_start_hour``. A plain ``postgresql://`` URL uses psycopg 3.
    """
    check_day_shape(day_start_hour, horizon_min)
    check_date_range(since, until)
    engine = engine_or_url if isinstance(engine_or_url, Engine) else engine_for(engine_or_url)
    try:
        first = service_day_start(since, day_start_hour)
        end = service_day_start(until + timedelta(days=1), day_start_hour)
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
    return assemble_days(
        booking_rows,
        shift_rows,
        since=since,
        until=until,
        day_start_hour=day_start_hour,
        horizon_min=horizon_min,
        travel=travel_for(travel, day_start_hour),
        withdrawn_statuses=frozenset(status.lower() for status in withdrawn_statuses),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _booking_from_record(record: HistoryBooking) -> BookingRow:
    return BookingRow(
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


def _shift_from_record(shift: HistoryShift, driver: HistoryDriver | None) -> ShiftRow:
    """A shift starts at its own location if it has one, else at the driver's home."""
    record = f"shift {shift.id} of driver {shift.driver_id!r}"
    if driver is None:
        problem = RowProblem(record, "driver_id", "no such driver in history_drivers")
        return ShiftRow(
            record, shift.driver_id, shift.service_date, None, None, None, None, None, (problem,)
        )
    has_start = shift.start_lat is not None or shift.start_lon is not None
    return ShiftRow(
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
                        capacity=driver.capacity.seated,
                    )
                )
        session.flush()
        for day, scenario in zip(days, scenarios, strict=True):
            day_start = service_day_start(day, scenario.travel.start_hour)
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
                        load=booking.load.seated,
                        status="booked",
                    )
                )
                renamed.append(replace(booking, id=booking_id))
            expected.append(
                replace(scenario, name=f"history-{day.isoformat()}", bookings=tuple(renamed))
            )
    return expected
