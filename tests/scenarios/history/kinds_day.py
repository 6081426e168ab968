"""A history day with places of every kind, ride limits and breaks, as CSV and as rows."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rldispatch.domain import Booking, Break, Driver, Places, Scenario
from rldispatch.scenarios.history import (
    DEFAULT_TRAVEL,
    HistoryBooking,
    HistoryDriver,
    HistoryShift,
    create_schema,
)

DAY = date(2025, 10, 20)
DATA = Path(__file__).parent / "data"

BOOKINGS_CSV = (DATA / "kinds_day" / "bookings.csv").read_text()
SHIFTS_CSV = (DATA / "kinds_day" / "shifts.csv").read_text()


def expected_day(shared_rides: bool = True) -> Scenario:
    """The day `data/kinds_day` describes, in minutes from 06:00."""
    return Scenario(
        name=f"history-{DAY.isoformat()}",
        coords="latlon",
        horizon_min=840.0,
        drivers=(
            Driver("d1", (46.2105, 6.112), (0.0, 540.0), 3, (Break(240.0, 330.0, 30.0),)),
            Driver("d2", (46.2, 6.14), (60.0, 780.0), Places(seated=4, wheelchair=1)),
            Driver(
                "d3",
                (46.198, 6.145),
                (0.0, 840.0),
                Places(seated=2, stretcher=1),
                (Break(360.0, 420.0, 45.0),),
            ),
        ),
        bookings=(
            Booking("b1", 0.0, (46.2101, 6.1422), (46.1935, 6.149), 150.0, (140.0, 175.0)),
            Booking(
                "b2",
                70.0,
                (46.205, 6.13),
                (46.19, 6.15),
                180.0,
                (170.0, 200.0),
                load=Places(wheelchair=1),
                max_ride_min=45.0,
            ),
            Booking(
                "b3",
                0.0,
                (46.22, 6.1),
                (46.195, 6.142),
                255.0,
                (240.0, 270.0),
                load=Places(stretcher=1),
                max_ride_min=60.0,
            ),
            Booking(
                "b4",
                180.0,
                (46.215, 6.125),
                (46.2, 6.16),
                300.0,
                (290.0, 320.0),
                load=Places(seated=1, wheelchair=1),
            ),
        ),
        travel=replace(DEFAULT_TRAVEL, start_hour=6.0),
        shared_rides=shared_rides,
    )


def write_kinds_csvs(
    folder: Path, bookings: str = BOOKINGS_CSV, shifts: str = SHIFTS_CSV
) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bookings_path, shifts_path = folder / "bookings.csv", folder / "shifts.csv"
    bookings_path.write_text(bookings)
    shifts_path.write_text(shifts)
    return bookings_path, shifts_path


def set_csv_cell(path: Path, key: str, column: str, value: str) -> int:
    """Set one cell of the row whose first column is ``key``; returns its line number."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    first = next(iter(rows[0]))
    index = next(i for i, row in enumerate(rows) if row[first] == key)
    rows[index][column] = value
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return index + 2


def _moment(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _number(text: str, kind: type = float) -> float | int | None:
    return kind(text) if text else None


def write_kinds_rows(engine: Engine) -> None:
    """The same day as rows of the history tables (a driver's vehicle on ``history_drivers``)."""
    create_schema(engine)
    shifts = list(csv.DictReader(SHIFTS_CSV.splitlines()))
    bookings = list(csv.DictReader(BOOKINGS_CSV.splitlines()))
    with Session(engine) as session, session.begin():
        for row in shifts:
            session.add(
                HistoryDriver(
                    id=row["driver_id"],
                    home_lat=float(row["start_lat"]),
                    home_lon=float(row["start_lon"]),
                    capacity=int(row["capacity"]),
                    wheelchair_capacity=_number(row["wheelchair_capacity"], int) or 0,
                    stretcher_capacity=_number(row["stretcher_capacity"], int) or 0,
                )
            )
        session.flush()
        for row in shifts:
            session.add(
                HistoryShift(
                    driver_id=row["driver_id"],
                    service_date=date.fromisoformat(row["service_date"]),
                    start_at=_moment(row["start_at"]),
                    end_at=_moment(row["end_at"]),
                    break_earliest_at=_moment(row["break_earliest_at"]),
                    break_latest_at=_moment(row["break_latest_at"]),
                    break_duration_min=_number(row["break_duration_min"]),
                )
            )
        for row in bookings:
            session.add(
                HistoryBooking(
                    id=row["id"],
                    created_at=_moment(row["created_at"]),
                    requested_pickup_at=_moment(row["requested_pickup_at"]),
                    window_start=_moment(row["window_start"]),
                    window_end=_moment(row["window_end"]),
                    pickup_lat=float(row["pickup_lat"]),
                    pickup_lon=float(row["pickup_lon"]),
                    dropoff_lat=float(row["dropoff_lat"]),
                    dropoff_lon=float(row["dropoff_lon"]),
                    load=int(row["load"]),
                    wheelchair_load=_number(row["wheelchair_load"], int),
                    stretcher_load=_number(row["stretcher_load"], int),
                    max_ride_min=_number(row["max_ride_min"]),
                )
            )
