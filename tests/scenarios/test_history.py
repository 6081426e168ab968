"""History database and CSV export → scenarios, one per service day."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.orm import Session

from rldispatch.domain import Scenario
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.history import (
    BOOKING_CSV_COLUMNS,
    BOOKING_CSV_OPTIONAL_COLUMNS,
    SHIFT_CSV_COLUMNS,
    SHIFT_CSV_OPTIONAL_COLUMNS,
    CollectResult,
    HistoryBooking,
    HistoryDriver,
    HistoryError,
    HistoryShift,
    collect_csv,
    collect_days,
    write_scenarios,
    write_synthetic_history,
)
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim import DaySimulator
from tests.scenarios.history.kinds_day import set_csv_cell

DAYS = [date(2025, 10, 20), date(2025, 10, 21), date(2025, 10, 22)]
SEED = 7
TIME_TOLERANCE_MIN = 1e-6


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'history.db'}")
    yield engine
    engine.dispose()


def greedy_metrics(scenario: Scenario):
    """Give the most pressing booking anyone can serve to its cheapest driver; else wait."""
    sim = DaySimulator(scenario)
    while not sim.done:
        visible = sim.visible_bookings()
        if visible.size:
            table = sim.insertion_table(visible)
            servable = np.flatnonzero(table.feasible.any(axis=0))
            if servable.size:
                slot = int(servable[0])
                sim.assign(int(np.argmin(table.cost[:, slot])), int(visible[slot]))
                continue
        sim.advance()
    sim.finish()
    return sim.metrics()


def assert_same_day(collected: Scenario, expected: Scenario) -> None:
    assert collected.name == expected.name
    assert collected.coords == expected.coords
    assert collected.horizon_min == expected.horizon_min
    assert collected.travel == expected.travel
    assert collected.drivers == expected.drivers
    assert [b.id for b in collected.bookings] == [b.id for b in expected.bookings]
    for got, want in zip(collected.bookings, expected.bookings, strict=True):
        assert got.pickup == want.pickup and got.dropoff == want.dropoff, got.id
        for name in ("release_min", "requested_min", "earliest_min", "latest_min"):
            assert abs(getattr(got, name) - getattr(want, name)) <= TIME_TOLERANCE_MIN, got.id
        assert (got.service_min, got.priority, got.load) == (
            want.service_min,
            want.priority,
            want.load,
        )


def set_booking(engine, booking_id: str, **values) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(HistoryBooking).where(HistoryBooking.id == booking_id).values(values)
        )


def export_csv(engine, bookings_path: Path, shifts_path: Path) -> None:
    """Write the history tables as the documented CSV export."""
    with Session(engine) as session:
        bookings = session.scalars(select(HistoryBooking)).all()
        shifts = session.execute(select(HistoryShift, HistoryDriver).join(HistoryDriver)).all()
    with bookings_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, BOOKING_CSV_COLUMNS + BOOKING_CSV_OPTIONAL_COLUMNS)
        writer.writeheader()
        for booking in bookings:
            writer.writerow({name: getattr(booking, name) for name in writer.fieldnames})
    with shifts_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, SHIFT_CSV_COLUMNS + SHIFT_CSV_OPTIONAL_COLUMNS)
        writer.writeheader()
        for shift, driver in shifts:
            row = {name: getattr(shift, name) for name in SHIFT_CSV_COLUMNS}
            writer.writerow({**row, "capacity": driver.capacity})


# --- database round trip ---------------------------------------------------------------------


def test_collected_days_hold_the_same_bookings_and_drivers_as_the_originals(engine):
    expected = write_synthetic_history(engine, DAYS, seed=SEED)

    result = collect_days(engine, DAYS[0], DAYS[-1])

    assert [collected.day for collected in result.days] == DAYS
    assert result.skipped == () and result.unplaced == ()
    for collected, want in zip(result.scenarios, expected, strict=True):
        assert_same_day(collected, want)


def test_collected_day_simulates_like_the_original(engine):
    write_synthetic_history(engine, DAYS, seed=SEED)

    result = collect_days(engine, DAYS[0], DAYS[-1])

    for index, collected in enumerate(result.scenarios):
        original = greedy_metrics(make_preset("geneva", SEED + index))
        again = greedy_metrics(collected)
        assert (again.served, again.cancelled) == (original.served, original.cancelled)
        assert again.late_pickup_rate == pytest.approx(original.late_pickup_rate)
        assert again.distance_km == pytest.approx(original.distance_km)


def test_advance_bookings_are_released_at_the_start_of_the_day(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    booking_id = f"{DAYS[0].isoformat()}-b1"
    set_booking(engine, booking_id, created_at=datetime(2025, 10, 1, 9, 0))

    (collected,) = collect_days(engine, DAYS[0], DAYS[0]).scenarios

    assert next(b for b in collected.bookings if b.id == booking_id).release_min == 0.0


def test_collect_reads_only_the_days_asked_for(engine):
    write_synthetic_history(engine, DAYS, seed=SEED)

    result = collect_days(engine, DAYS[1], DAYS[1])

    assert [collected.day for collected in result.days] == [DAYS[1]]
    assert result.skipped == ()


def test_write_scenarios_names_files_by_date_and_they_load_back(engine, tmp_path):
    write_synthetic_history(engine, DAYS, seed=SEED)
    result = collect_days(engine, DAYS[0], DAYS[-1])

    paths = write_scenarios(result, tmp_path / "days")

    assert [path.name for path in paths] == [f"{day.isoformat()}.json" for day in DAYS]
    for path, scenario in zip(paths, result.scenarios, strict=True):
        assert load_scenario(path) == scenario


# --- malformed rows --------------------------------------------------------------------------


def test_malformed_rows_skip_their_day_whole_and_name_booking_and_field(engine):
    days = [*DAYS, date(2025, 10, 23)]
    write_synthetic_history(engine, days, seed=SEED)
    set_booking(engine, f"{days[0].isoformat()}-b3", pickup_lat=None)
    bad_window = f"{days[1].isoformat()}-b5"
    set_booking(
        engine,
        bad_window,
        window_start=datetime(2025, 10, 21, 10, 0),
        window_end=datetime(2025, 10, 21, 9, 0),
    )
    set_booking(engine, f"{days[2].isoformat()}-b8", dropoff_lon=math.nan)

    result = collect_days(engine, days[0], days[-1])

    assert [collected.day for collected in result.days] == [days[3]]
    skipped = {s.day: s for s in result.skipped}
    assert set(skipped) == set(days[:3])
    found = {
        day: [(p.record, p.field) for p in skipped_day.problems]
        for day, skipped_day in skipped.items()
    }
    assert found[days[0]] == [(f"booking '{days[0].isoformat()}-b3'", "pickup_lat")]
    assert found[days[1]] == [(f"booking '{bad_window}'", "window_end")]
    assert found[days[2]] == [(f"booking '{days[2].isoformat()}-b8'", "dropoff_lon")]
    assert f"{days[0].isoformat()}-b3" in skipped[days[0]].reason


def test_booking_outside_the_service_hours_is_reported(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    booking_id = f"{DAYS[0].isoformat()}-b2"
    late = datetime(2025, 10, 20, 21, 30)
    set_booking(engine, booking_id, requested_pickup_at=late, window_start=late, window_end=late)

    result = collect_days(engine, DAYS[0], DAYS[0])

    assert result.days == ()
    (problem,) = result.skipped[0].problems
    assert problem.field == "requested_pickup_at" and booking_id in problem.record
    assert "service hours" in problem.message


def test_day_without_drivers_on_shift_is_skipped_with_its_reason(engine):
    write_synthetic_history(engine, DAYS[:2], seed=SEED)
    with Session(engine) as session, session.begin():
        session.execute(delete(HistoryShift).where(HistoryShift.service_date == DAYS[0]))

    result = collect_days(engine, DAYS[0], DAYS[1])

    assert [collected.day for collected in result.days] == [DAYS[1]]
    assert [(s.day, s.reason) for s in result.skipped] == [
        (DAYS[0], "no driver on shift during the service hours")
    ]


def test_shift_is_clipped_to_the_horizon(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    with Session(engine) as session, session.begin():
        session.execute(
            update(HistoryShift)
            .where(HistoryShift.driver_id == "d1")
            .values(start_at=datetime(2025, 10, 20, 5, 0), end_at=datetime(2025, 10, 20, 23, 0))
        )

    (collected,) = collect_days(engine, DAYS[0], DAYS[0]).scenarios

    assert collected.drivers[0].id == "d1"
    assert collected.drivers[0].shift == (0.0, 840.0)


def test_withdrawn_bookings_are_left_out_and_noted(engine):
    expected = write_synthetic_history(engine, DAYS[:1], seed=SEED)
    booking_id = f"{DAYS[0].isoformat()}-b4"
    set_booking(engine, booking_id, status="cancelled", pickup_lat=None)

    (collected,) = collect_days(engine, DAYS[0], DAYS[0]).days

    assert len(collected.scenario.bookings) == len(expected[0].bookings) - 1
    assert booking_id not in {b.id for b in collected.scenario.bookings}
    assert collected.notes == ("1 booking with status 'cancelled' left out (withdrawn)",)


def test_booking_without_any_time_is_reported_on_no_day(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    booking_id = f"{DAYS[0].isoformat()}-b6"
    set_booking(engine, booking_id, requested_pickup_at=None, window_start=None, window_end=None)

    result = collect_days(engine, DAYS[0], DAYS[0])

    assert [p.record for p in result.unplaced] == [f"booking {booking_id!r}"]


def test_until_before_since_is_refused(engine):
    with pytest.raises(HistoryError, match="before since"):
        collect_days(engine, DAYS[1], DAYS[0])


# --- CSV -------------------------------------------------------------------------------------


def test_csv_export_gives_the_same_days_as_the_database(engine, tmp_path):
    expected = write_synthetic_history(engine, DAYS, seed=SEED)
    export_csv(engine, tmp_path / "bookings.csv", tmp_path / "shifts.csv")

    result = collect_csv(tmp_path / "bookings.csv", tmp_path / "shifts.csv")

    assert [collected.day for collected in result.days] == DAYS
    for collected, want in zip(result.scenarios, expected, strict=True):
        assert_same_day(collected, want)


def test_csv_since_and_until_pick_the_days(engine, tmp_path):
    write_synthetic_history(engine, DAYS, seed=SEED)
    export_csv(engine, tmp_path / "bookings.csv", tmp_path / "shifts.csv")

    result = collect_csv(tmp_path / "bookings.csv", tmp_path / "shifts.csv", since=DAYS[1])

    assert [collected.day for collected in result.days] == DAYS[1:]


def test_csv_malformed_rows_are_reported_with_line_booking_and_field(engine, tmp_path):
    write_synthetic_history(engine, DAYS, seed=SEED)
    bookings, shifts = tmp_path / "bookings.csv", tmp_path / "shifts.csv"
    export_csv(engine, bookings, shifts)
    not_a_number = f"{DAYS[0].isoformat()}-b2"
    line = set_csv_cell(bookings, not_a_number, "pickup_lat", "north")
    set_csv_cell(bookings, f"{DAYS[1].isoformat()}-b2", "dropoff_lat", "nan")

    result = collect_csv(bookings, shifts)

    assert [collected.day for collected in result.days] == [DAYS[2]]
    problems = {s.day: s.problems for s in result.skipped}
    (first,) = problems[DAYS[0]]
    assert first.record == f"bookings.csv line {line}, booking {not_a_number!r}"
    assert first.field == "pickup_lat" and "north" in first.message
    (second,) = problems[DAYS[1]]
    assert second.field == "dropoff_lat" and "finite" in second.message


def test_csv_without_a_required_column_is_refused(tmp_path):
    bookings = tmp_path / "bookings.csv"
    bookings.write_text("id,created_at\nb1,2025-10-20 06:00\n")
    shifts = tmp_path / "shifts.csv"
    shifts.write_text(",".join(SHIFT_CSV_COLUMNS) + "\n")

    with pytest.raises(HistoryError, match="missing column"):
        collect_csv(bookings, shifts)


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_round_trip_gives_the_original_days(postgres_engine):
    expected = write_synthetic_history(postgres_engine, DAYS, seed=SEED)

    result = collect_days(postgres_engine, DAYS[0], DAYS[-1])

    assert [collected.day for collected in result.days] == DAYS
    for collected, want in zip(result.scenarios, expected, strict=True):
        assert_same_day(collected, want)
    original = greedy_metrics(make_preset("geneva", SEED))
    again = greedy_metrics(result.scenarios[0])
    assert (again.served, again.cancelled) == (original.served, original.cancelled)


@pytest.mark.postgres
def test_postgres_nan_coordinate_skips_its_day(postgres_engine):
    write_synthetic_history(postgres_engine, DAYS[:2], seed=SEED)
    booking_id = f"{DAYS[0].isoformat()}-b9"
    set_booking(postgres_engine, booking_id, pickup_lon=math.nan)

    result: CollectResult = collect_days(postgres_engine, DAYS[0], DAYS[1])

    assert [collected.day for collected in result.days] == [DAYS[1]]
    (problem,) = result.skipped[0].problems
    assert (problem.record, problem.field) == (f"booking {booking_id!r}", "pickup_lon")
    assert "finite" in problem.message


def test_synthetic_history_rows_are_in_the_tables(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    original = make_preset("geneva", SEED)

    with Session(engine) as session:
        n_bookings = len(session.scalars(select(HistoryBooking)).all())
        n_shifts = len(session.scalars(select(HistoryShift)).all())

    assert (n_bookings, n_shifts) == (len(original.bookings), len(original.drivers))


def test_shift_of_an_unknown_driver_skips_its_day(engine):
    write_synthetic_history(engine, DAYS[:1], seed=SEED)
    with Session(engine) as session, session.begin():
        session.execute(
            update(HistoryShift).where(HistoryShift.driver_id == "d2").values(driver_id="d99")
        )

    result = collect_days(engine, DAYS[0], DAYS[0])

    assert result.days == ()
    (problem,) = result.skipped[0].problems
    assert (problem.field, problem.day) == ("driver_id", DAYS[0]) and "d99" in problem.record


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path):
    missing = tmp_path / "typo.db"

    with pytest.raises(HistoryError, match="no such SQLite database file"):
        collect_days(f"sqlite:///{missing}", DAYS[0], DAYS[0])

    assert not missing.exists()
