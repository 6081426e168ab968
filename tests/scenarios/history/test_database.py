"""The history database with places by kind, ride limits and breaks; older databases read."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.orm import Session

from rldispatch.cli.common import env_config_for
from rldispatch.domain import Places, Scenario, scenario_to_dict
from rldispatch.env import DispatchEnv
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.history import (
    OPTIONAL_COLUMNS,
    HistoryBooking,
    HistoryDriver,
    HistoryError,
    HistoryShift,
    collect_csv,
    collect_days,
    create_schema,
    write_scenarios,
    write_synthetic_history,
)
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import run_day
from tests.scenarios.history.kinds_day import (
    DATA,
    DAY,
    expected_day,
    write_kinds_csvs,
    write_kinds_rows,
)

DAYS = [date(2025, 10, 20), date(2025, 10, 21)]
SEED = 7
TIME_TOLERANCE_MIN = 1e-6
OLD_EXPORT = DATA / "old_export"


def old_tables(leave_out: str = "") -> MetaData:
    """The history tables as they were before places had kinds (less ``leave_out``)."""
    metadata = MetaData()
    columns = {
        "history_drivers": [
            Column("id", String(64), primary_key=True),
            Column("name", String(200)),
            Column("home_lat", Double),
            Column("home_lon", Double),
            Column("capacity", Integer, nullable=False, server_default=text("1")),
        ],
        "history_shifts": [
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("driver_id", ForeignKey("history_drivers.id"), nullable=False),
            Column("service_date", Date, nullable=False),
            Column("start_at", DateTime),
            Column("end_at", DateTime),
            Column("start_lat", Double),
            Column("start_lon", Double),
        ],
        "history_bookings": [
            Column("id", String(64), primary_key=True),
            *(
                Column(name, DateTime)
                for name in ("created_at", "requested_pickup_at", "window_start", "window_end")
            ),
            *(
                Column(name, Double)
                for name in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon")
            ),
            Column("service_min", Double, nullable=False, server_default=text("2.0")),
            Column("priority", Integer, nullable=False, server_default=text("0")),
            Column("load", Integer, nullable=False, server_default=text("1")),
            Column("status", String(32), nullable=False, server_default="booked"),
        ],
    }
    for name, table_columns in columns.items():
        Table(name, metadata, *(c for c in table_columns if c.name != leave_out))
    return metadata


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'history.db'}")
    yield engine
    engine.dispose()


def write_old_history(engine: Engine) -> None:
    """The old export's rows in tables of the old layout (no column of the new kinds)."""
    tables = old_tables()
    tables.create_all(engine)
    with engine.begin() as connection:
        shifts = list(csv.DictReader((OLD_EXPORT / "shifts.csv").open()))
        drivers = {}
        for row in shifts:
            drivers.setdefault(row["driver_id"], row)
        connection.execute(
            insert(tables.tables["history_drivers"]),
            [
                {
                    "id": driver_id,
                    "home_lat": float(row["start_lat"]),
                    "home_lon": float(row["start_lon"]),
                    "capacity": int(row["capacity"] or 1),
                }
                for driver_id, row in drivers.items()
            ],
        )
        connection.execute(
            insert(tables.tables["history_shifts"]),
            [
                {
                    "driver_id": row["driver_id"],
                    "service_date": date.fromisoformat(row["service_date"]),
                    "start_at": datetime.fromisoformat(row["start_at"]),
                    "end_at": datetime.fromisoformat(row["end_at"]),
                }
                for row in shifts
            ],
        )
        bookings = list(csv.DictReader((OLD_EXPORT / "bookings.csv").open()))
        connection.execute(
            insert(tables.tables["history_bookings"]),
            [
                {
                    "id": row["id"],
                    **{
                        name: datetime.fromisoformat(row[name])
                        for name in (
                            "created_at",
                            "requested_pickup_at",
                            "window_start",
                            "window_end",
                        )
                    },
                    **{
                        name: float(row[name])
                        for name in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon")
                    },
                    "service_min": float(row["service_min"] or 2),
                    "priority": int(row["priority"] or 0),
                    "load": int(row["load"] or 1),
                    "status": row["status"] or "booked",
                }
                for row in bookings
            ],
        )


def assert_same_day(collected: Scenario, expected: Scenario) -> None:
    """The same day, times within float rounding of minutes through datetimes."""
    got, want = scenario_to_dict(collected), scenario_to_dict(expected)
    for driver in got["drivers"] + want["drivers"]:
        for pause in driver.get("breaks", []):
            for key in pause:
                pause[key] = round(pause[key] / TIME_TOLERANCE_MIN) * TIME_TOLERANCE_MIN
    for booking in got["bookings"] + want["bookings"]:
        for key in ("release_min", "requested_min"):
            booking[key] = round(booking[key] / TIME_TOLERANCE_MIN) * TIME_TOLERANCE_MIN
        booking["window"] = [
            round(t / TIME_TOLERANCE_MIN) * TIME_TOLERANCE_MIN for t in booking["window"]
        ]
    assert got == want


def play_and_check(scenario: Scenario, policy_name: str) -> tuple[int, int]:
    """Play the day with a baseline; the validator's counts (all 0) and the breaks taken."""
    env = DispatchEnv(env_config_for([scenario]))
    played = run_day(make_baseline(policy_name, seed=0), env, scenario)
    check = check_played_day(env.sim)
    assert (
        check.wrong_place,
        check.too_many_on_board,
        check.max_ride_violations,
        check.missed_breaks,
    ) == (0, 0, 0, 0), check.problems
    return played.served, played.breaks_taken


# --- round trips -----------------------------------------------------------------------------


def test_a_day_with_every_kind_a_ride_limit_and_breaks_round_trips(engine, tmp_path):
    write_kinds_rows(engine)

    result = collect_days(engine, DAY, DAY, shared_rides=True)

    assert (result.skipped, result.unplaced) == ((), ())
    assert result.scenarios == [expected_day()]
    from_db = write_scenarios(result, tmp_path / "db")
    from_csv = write_scenarios(
        collect_csv(*write_kinds_csvs(tmp_path / "csv"), shared_rides=True), tmp_path / "days"
    )
    assert from_db[0].read_bytes() == from_csv[0].read_bytes()


def test_synthetic_mixed_fleet_history_round_trips_and_plays_within_the_rules(engine):
    expected = write_synthetic_history(engine, DAYS, seed=SEED, preset="geneva-mix")

    result = collect_days(engine, DAYS[0], DAYS[-1], shared_rides=True)

    assert [collected.day for collected in result.days] == DAYS
    for collected, want in zip(result.scenarios, expected, strict=True):
        assert_same_day(collected, want)
    day = result.scenarios[0]
    assert any(d.capacity.wheelchair for d in day.drivers)
    assert any(d.breaks for d in day.drivers)
    assert any(b.load.stretcher for b in day.bookings)
    original = make_preset("geneva-mix", SEED)
    for name in ("insertion", "nearest"):
        served, breaks_taken = play_and_check(day, name)
        assert served > 0 and breaks_taken > 0
        assert play_and_check(replace_name(original, day.name), name) == (served, breaks_taken)


def replace_name(scenario: Scenario, name: str) -> Scenario:
    from dataclasses import replace

    return replace(scenario, name=name)


def test_a_shift_that_names_its_own_vehicle_overrides_the_drivers(engine):
    write_kinds_rows(engine)
    with Session(engine) as session, session.begin():
        session.execute(
            update(HistoryShift)
            .where(HistoryShift.driver_id == "d1")
            .values(capacity=2, wheelchair_capacity=1)
        )
        session.execute(
            update(HistoryShift).where(HistoryShift.driver_id == "d3").values(stretcher_capacity=1)
        )

    (day,) = collect_days(engine, DAY, DAY).scenarios

    vehicles = {driver.id: driver.capacity for driver in day.drivers}
    assert vehicles == {
        "d1": Places(seated=2, wheelchair=1),
        "d2": Places(seated=4, wheelchair=1),
        "d3": Places(stretcher=1),
    }


def test_empty_kind_columns_are_no_places_of_the_kind(engine):
    write_kinds_rows(engine)
    with Session(engine) as session, session.begin():
        session.execute(update(HistoryDriver).values(wheelchair_capacity=None))
        session.execute(update(HistoryShift).values(capacity=None))
        session.execute(
            update(HistoryBooking)
            .where(HistoryBooking.id == "b1")
            .values(wheelchair_load=None, stretcher_load=None, max_ride_min=None)
        )

    result = collect_days(engine, DAY, DAY)

    problems = {(p.record, p.field) for p in result.skipped[0].problems}
    assert problems == {("booking 'b2'", "wheelchair_load"), ("booking 'b4'", "wheelchair_load")}


# --- checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "key", "values", "record", "field", "message"),
    [
        (HistoryBooking, "b2", {"max_ride_min": 0.0}, "booking 'b2'", "max_ride_min", "> 0"),
        (HistoryBooking, "b3", {"stretcher_load": -1}, "booking 'b3'", "stretcher_load", "-1"),
        (HistoryBooking, "b1", {"load": -1}, "booking 'b1'", "load", "at least 1 seat"),
        (HistoryDriver, "d2", {"wheelchair_capacity": -2}, "d2", "wheelchair_capacity", "-2"),
        (HistoryShift, "d1", {"break_duration_min": -30.0}, "d1", "break_duration_min", "> 0"),
        (
            HistoryShift,
            "d1",
            {"break_earliest_at": datetime(2025, 10, 20, 5, 0)},
            "d1",
            "break_earliest_at",
            "before the shift starts",
        ),
        (
            HistoryShift,
            "d3",
            {"break_latest_at": datetime(2025, 10, 20, 19, 30)},
            "d3",
            "break_latest_at",
            "ends after the shift",
        ),
    ],
)
def test_a_malformed_field_skips_its_day_and_is_named(
    engine, model, key, values, record, field, message
):
    """(SQLite keeps no NaN: it stores one as NULL, an empty column; PostgreSQL's NaN is
    checked below.)"""
    write_kinds_rows(engine)
    column = model.driver_id if model is HistoryShift else model.id
    with Session(engine) as session, session.begin():
        session.execute(update(model).where(column == key).values(values))

    result = collect_days(engine, DAY, DAY)

    assert result.days == ()
    (problem,) = result.skipped[0].problems
    assert record in problem.record and problem.field == field and message in problem.message


# --- older databases -------------------------------------------------------------------------


def test_an_older_database_without_the_new_columns_collects_to_the_old_bytes(engine, tmp_path):
    write_old_history(engine)

    result = collect_days(engine, date(2025, 10, 20), date(2025, 10, 21))
    paths = write_scenarios(result, tmp_path / "days")

    assert [path.name for path in paths] == ["2025-10-20.json", "2025-10-21.json"]
    for path in paths:
        assert path.read_bytes() == (OLD_EXPORT / "collected" / path.name).read_bytes()


def test_create_schema_adds_the_new_columns_to_an_older_database(engine, tmp_path):
    write_old_history(engine)

    create_schema(engine)
    create_schema(engine)  # a second time finds nothing to add

    columns = {
        table: {column["name"] for column in inspect(engine).get_columns(table)}
        for table in OPTIONAL_COLUMNS
    }
    for table, names in OPTIONAL_COLUMNS.items():
        assert set(names) <= columns[table], table
    with engine.connect() as connection:
        loads = connection.execute(
            text("SELECT DISTINCT wheelchair_load, stretcher_load FROM history_bookings")
        ).all()
    assert loads == [(0, 0)]
    paths = write_scenarios(
        collect_days(engine, date(2025, 10, 20), date(2025, 10, 21)), tmp_path / "days"
    )
    for path in paths:
        assert path.read_bytes() == (OLD_EXPORT / "collected" / path.name).read_bytes()


def test_a_table_without_a_column_collect_needs_is_refused_with_its_name(engine):
    old_tables(leave_out="pickup_lat").create_all(engine)

    with pytest.raises(HistoryError, match="history_bookings: no column pickup_lat"):
        collect_days(engine, DAY, DAY)


def test_a_database_without_the_tables_is_refused_with_the_way_to_create_them(engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (id INTEGER)"))

    with pytest.raises(HistoryError, match="history_bookings: no such table.*create_schema"):
        collect_days(engine, DAY, DAY)


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_day_with_every_kind_round_trips(postgres_engine):
    write_kinds_rows(postgres_engine)

    result = collect_days(postgres_engine, DAY, DAY, shared_rides=True)

    assert result.scenarios == [expected_day()]


@pytest.mark.postgres
def test_postgres_mixed_fleet_history_round_trips(postgres_engine):
    expected = write_synthetic_history(postgres_engine, DAYS, seed=SEED, preset="geneva-mix")

    result = collect_days(postgres_engine, DAYS[0], DAYS[-1], shared_rides=True)

    for collected, want in zip(result.scenarios, expected, strict=True):
        assert_same_day(collected, want)


@pytest.mark.postgres
def test_postgres_nan_break_and_ride_limit_are_named(postgres_engine):
    write_kinds_rows(postgres_engine)
    with Session(postgres_engine) as session, session.begin():
        session.execute(
            update(HistoryShift)
            .where(HistoryShift.driver_id == "d3")
            .values(break_duration_min=math.nan)
        )
        session.execute(
            update(HistoryBooking).where(HistoryBooking.id == "b2").values(max_ride_min=math.nan)
        )

    result = collect_days(postgres_engine, DAY, DAY)

    problems = {(p.field, "nan" in p.message) for p in result.skipped[0].problems}
    assert problems == {("break_duration_min", True), ("max_ride_min", True)}


@pytest.mark.postgres
def test_postgres_older_database_reads_and_is_upgraded(postgres_engine, tmp_path):
    write_old_history(postgres_engine)

    before = write_scenarios(
        collect_days(postgres_engine, date(2025, 10, 20), date(2025, 10, 21)), tmp_path / "a"
    )
    create_schema(postgres_engine)
    after = write_scenarios(
        collect_days(postgres_engine, date(2025, 10, 20), date(2025, 10, 21)), tmp_path / "b"
    )

    for first, second in zip(before, after, strict=True):
        want = (OLD_EXPORT / "collected" / first.name).read_bytes()
        assert first.read_bytes() == second.read_bytes() == want
