"""Reading the days from a CSV export: a bookings file and a shifts file."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rldispatch.domain import TravelConfig
from rldispatch.scenarios.history.day_building import (
    BOOKING_DEFAULTS,
    WITHDRAWN_STATUSES,
    BookingRow,
    ShiftRow,
    assemble_days,
    check_date_range,
    check_day_shape,
    travel_for,
)
from rldispatch.scenarios.history.results import CollectResult, RowProblem
from rldispatch.scenarios.history.schema import HistoryError

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
BOOKING_CSV_OPTIONAL_COLUMNS = (
    "service_min",
    "priority",
    "load",
    "status",
    "wheelchair_load",
    "stretcher_load",
    "max_ride_min",
)
SHIFT_CSV_COLUMNS = ("driver_id", "service_date", "start_at", "end_at", "start_lat", "start_lon")
SHIFT_CSV_OPTIONAL_COLUMNS = (
    "capacity",
    "wheelchair_capacity",
    "stretcher_capacity",
    "break_earliest_at",
    "break_latest_at",
    "break_duration_min",
)


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
    """Every record of a UTF-8 CSV file with its line number; a file that cannot be read as
    one (another encoding, a field over the csv module's limit, a NUL byte) is one
    :class:`HistoryError` naming the file and line."""
    if not path.is_file():
        raise HistoryError(f"{path}: no such CSV file")
    with path.open("rb") as raw:
        start = raw.read(4)
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise HistoryError(f"{path}: the file is UTF-16; export the CSV as UTF-8")
    rows = []
    reader: csv.DictReader | None = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in columns]
            if missing:
                raise HistoryError(f"{path}: missing column(s) {', '.join(missing)}")
            reader.fieldnames = columns
            for values in reader:
                rows.append((reader.line_num, values))
    except UnicodeDecodeError as error:
        raise HistoryError(
            f"{path}: not UTF-8 text (undecodable byte at offset {error.start}); "
            "export the CSV as UTF-8"
        ) from None
    except csv.Error as error:
        line = reader.line_num + 1 if reader is not None else 1
        if "field larger than field limit" in str(error):
            reason = f"a field is longer than {csv.field_size_limit():,} characters"
        else:
            reason = str(error)
        raise HistoryError(f"{path} line {line}: {reason}") from None
    return rows


def _bookings_from_csv(path: Path) -> list[BookingRow]:
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
        row = BookingRow(
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
            wheelchair_load=csv_row.integer("wheelchair_load", 0),
            stretcher_load=csv_row.integer("stretcher_load", 0),
            max_ride_min=csv_row.number("max_ride_min"),
        )
        row.parse_problems = tuple(csv_row.problems)
        rows.append(row)
    return rows


def _shifts_from_csv(path: Path) -> list[ShiftRow]:
    rows = []
    for line, values in _read_csv(path, SHIFT_CSV_COLUMNS):
        driver_id = (values.get("driver_id") or "").strip()
        csv_row = _CsvRow(values, f"{path.name} line {line}, driver {driver_id!r}")
        row = ShiftRow(
            record=csv_row.record,
            driver_id=driver_id,
            service_date=csv_row.day("service_date"),
            start_at=csv_row.moment("start_at"),
            end_at=csv_row.moment("end_at"),
            start_lat=csv_row.number("start_lat"),
            start_lon=csv_row.number("start_lon"),
            capacity=csv_row.integer("capacity", 1),
            wheelchair_capacity=csv_row.integer("wheelchair_capacity", 0),
            stretcher_capacity=csv_row.integer("stretcher_capacity", 0),
            break_earliest_at=csv_row.moment("break_earliest_at"),
            break_latest_at=csv_row.moment("break_latest_at"),
            break_duration_min=csv_row.number("break_duration_min"),
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
    shared_rides: bool = False,
) -> CollectResult:
    """Rebuild service days from a bookings CSV and a shifts CSV (see ``docs/history.md``).

    The same checks as :func:`collect_days`: a day with any malformed row is skipped whole, each
    problem reported with its line, booking id or driver, and field. Without ``since`` or
    ``until`` every day in the files is collected. ``shared_rides`` marks the days as days
    whose vehicles carry several bookings at once.
    """
    check_day_shape(day_start_hour, horizon_min)
    check_date_range(since, until)
    return assemble_days(
        _bookings_from_csv(Path(bookings_csv)),
        _shifts_from_csv(Path(shifts_csv)),
        since=since,
        until=until,
        day_start_hour=day_start_hour,
        horizon_min=horizon_min,
        travel=travel_for(travel, day_start_hour),
        withdrawn_statuses=frozenset(status.lower() for status in withdrawn_statuses),
        shared_rides=shared_rides,
    )
