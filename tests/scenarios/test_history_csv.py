"""History CSV files and dates that cannot be read: one line each, never a traceback."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from rldispatch.cli import main
from rldispatch.scenarios.history import (
    BOOKING_CSV_COLUMNS,
    SHIFT_CSV_COLUMNS,
    HistoryBooking,
    HistoryError,
    collect_csv,
    collect_days,
    create_schema,
)
from rldispatch.scenarios.history.schema import HistoryDriver, HistoryShift

GOOD_BOOKING = (
    "b1,2025-10-19 12:00,2025-10-20 08:00,2025-10-20 07:50,2025-10-20 08:30,46.2,6.1,46.21,6.12"
)
GOOD_SHIFT = "d1,2025-10-20,2025-10-20 06:00,2025-10-20 20:00,46.2,6.1"


def write_csvs(tmp_path: Path, bookings: list[str], encoding: str = "utf-8") -> tuple[Path, Path]:
    bookings_path, shifts_path = tmp_path / "bookings.csv", tmp_path / "shifts.csv"
    header = ",".join(BOOKING_CSV_COLUMNS)
    bookings_path.write_text("\n".join([header, *bookings]) + "\n", encoding=encoding)
    shifts_path.write_text(",".join(SHIFT_CSV_COLUMNS) + "\n" + GOOD_SHIFT + "\n")
    return bookings_path, shifts_path


def collect_cli(bookings: Path, shifts: Path, out: Path, *extra: str) -> int:
    return main(
        ["collect", "--csv", str(bookings), "--shifts-csv", str(shifts), "--out", str(out)]
        + list(extra)
    )


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


def test_a_well_formed_csv_gives_its_day(tmp_path):
    result = collect_csv(*write_csvs(tmp_path, [GOOD_BOOKING]))
    assert [collected.day for collected in result.days] == [date(2025, 10, 20)]


def test_csv_field_over_128_kib_is_one_line_naming_file_and_line(tmp_path, capsys):
    bookings, shifts = write_csvs(tmp_path, [GOOD_BOOKING, "b2," + "x" * 200_000])
    code = collect_cli(bookings, shifts, tmp_path / "out")
    line = one_error_line(capsys)
    assert code == 2
    assert f"{bookings} line 3: a field is longer than 131,072 characters" in line


def test_utf16_csv_is_one_line(tmp_path, capsys):
    bookings, shifts = write_csvs(tmp_path, [GOOD_BOOKING], encoding="utf-16")
    code = collect_cli(bookings, shifts, tmp_path / "out")
    assert code == 2
    assert f"{bookings}: the file is UTF-16; export the CSV as UTF-8" in one_error_line(capsys)


def test_undecodable_csv_is_one_line(tmp_path, capsys):
    bookings, shifts = write_csvs(tmp_path, [GOOD_BOOKING])
    bookings.write_bytes(bookings.read_bytes() + b"b2,\xff\x80\x81\n")
    code = collect_cli(bookings, shifts, tmp_path / "out")
    assert code == 2 and "not UTF-8 text" in one_error_line(capsys)


def test_year_0001_requested_time_is_reported_on_no_day(tmp_path):
    row = GOOD_BOOKING.replace("2025-10-20 08:00", "0001-01-01 00:00")
    result = collect_csv(*write_csvs(tmp_path, [row]))
    assert [str(problem) for problem in result.unplaced] == [
        "bookings.csv line 2, booking 'b1': requested_pickup_at: "
        "0001-01-01 00:00:00 is outside the years 1900 to 2999"
    ]


def test_year_0001_creation_time_skips_the_day_naming_the_field(tmp_path):
    row = GOOD_BOOKING.replace("2025-10-19 12:00", "0001-01-01 00:00")
    result = collect_csv(*write_csvs(tmp_path, [row]))
    assert result.days == ()
    assert "booking 'b1': created_at: 0001-01-01 00:00:00 is outside" in result.skipped[0].reason


def test_shift_in_year_9999_is_reported_on_no_day(tmp_path):
    bookings, shifts = write_csvs(tmp_path, [GOOD_BOOKING])
    shifts.write_text(
        ",".join(SHIFT_CSV_COLUMNS) + "\nd1,9999-12-31,9999-12-31 06:00,9999-12-31 20:00,46.2,6.1\n"
    )
    result = collect_csv(bookings, shifts)
    assert "service_date: 9999-12-31 is outside the years" in str(result.unplaced[0])


def test_collect_until_9999_12_31_is_one_line(tmp_path, capsys):
    bookings, shifts = write_csvs(tmp_path, [GOOD_BOOKING])
    code = collect_cli(bookings, shifts, tmp_path / "out", "--until", "9999-12-31")
    assert code == 2
    assert "until: 9999-12-31 is outside the years 1900 to 2999" in one_error_line(capsys)


def test_collect_days_refuses_a_range_outside_the_years(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'history.db'}")
    with pytest.raises(HistoryError, match="since: 0001-01-01 is outside"):
        collect_days(engine, date(1, 1, 1), date(2025, 1, 1))


def test_database_row_in_year_0001_is_reported_not_a_crash(tmp_path):
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{tmp_path / 'history.db'}")
    create_schema(engine)
    with Session(engine) as session, session.begin():
        session.add(HistoryDriver(id="d1", home_lat=46.2, home_lon=6.1))
        session.add(
            HistoryShift(
                driver_id="d1",
                service_date=date(2025, 10, 20),
                start_at=datetime(2025, 10, 20, 6),
                end_at=datetime(2025, 10, 20, 20),
            )
        )
        session.add(
            HistoryBooking(
                id="b1",
                created_at=datetime(1, 1, 1),
                requested_pickup_at=datetime(2025, 10, 20, 8),
                window_start=datetime(2025, 10, 20, 7, 50),
                window_end=datetime(2025, 10, 20, 8, 30),
                pickup_lat=46.2,
                pickup_lon=6.1,
                dropoff_lat=46.21,
                dropoff_lon=6.12,
            )
        )
    result = collect_days(engine, date(2025, 10, 20), date(2025, 10, 20))
    engine.dispose()
    assert "booking 'b1': created_at: 0001-01-01 00:00:00 is outside" in result.skipped[0].reason
