"""A CSV export with places by kind, ride limits and breaks; old exports collect unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rldispatch.domain import Break, scenario_to_dict
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.history import collect_csv, write_scenarios
from tests.scenarios.history.kinds_day import (
    DATA,
    DAY,
    expected_day,
    set_csv_cell,
    write_kinds_csvs,
)

OLD_EXPORT = DATA / "old_export"
"""An export from before places had kinds, and the day files it collected to then."""


def test_a_day_with_every_kind_a_ride_limit_and_breaks_round_trips(tmp_path):
    result = collect_csv(*write_kinds_csvs(tmp_path), shared_rides=True)

    assert (result.skipped, result.unplaced) == ((), ())
    (collected,) = result.days
    assert scenario_to_dict(collected.scenario) == scenario_to_dict(expected_day())
    (path,) = write_scenarios(result, tmp_path / "days")
    assert load_scenario(path) == expected_day()


def test_without_shared_rides_the_day_keeps_one_booking_at_a_time(tmp_path):
    result = collect_csv(*write_kinds_csvs(tmp_path))

    assert result.scenarios == [expected_day(shared_rides=False)]


def test_an_export_without_the_new_columns_collects_to_the_same_bytes(tmp_path):
    result = collect_csv(OLD_EXPORT / "bookings.csv", OLD_EXPORT / "shifts.csv")
    paths = write_scenarios(result, tmp_path / "days")

    expected = sorted((OLD_EXPORT / "collected").glob("*.json"))
    assert [path.name for path in paths] == [path.name for path in expected]
    for path, want in zip(paths, expected, strict=True):
        assert path.read_bytes() == want.read_bytes(), path.name


def test_the_new_columns_left_blank_change_no_byte(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(OLD_EXPORT, folder)
    for name, extra in (
        ("bookings.csv", ",wheelchair_load,stretcher_load,max_ride_min"),
        (
            "shifts.csv",
            ",wheelchair_capacity,stretcher_capacity,break_earliest_at,"
            "break_latest_at,break_duration_min",
        ),
    ):
        lines = (folder / name).read_text().splitlines()
        blanks = "," * extra.count(",")
        (folder / name).write_text(
            "\n".join([lines[0] + extra, *(line + blanks for line in lines[1:])]) + "\n"
        )

    paths = write_scenarios(
        collect_csv(folder / "bookings.csv", folder / "shifts.csv"), tmp_path / "days"
    )

    for path in paths:
        assert path.read_bytes() == (OLD_EXPORT / "collected" / path.name).read_bytes()


MALFORMED = [
    ("bookings", "b2", "wheelchair_load", "-1", "wheelchair_load", "must be 0 or more places"),
    ("bookings", "b3", "stretcher_load", "nan", "stretcher_load", "not a whole number"),
    ("bookings", "b3", "stretcher_load", "1.5", "stretcher_load", "not a whole number"),
    ("bookings", "b1", "load", "0", "load", "must be at least 1 seat"),
    ("bookings", "b2", "load", "-1", "load", "must be 0 or more seats"),
    ("bookings", "b2", "max_ride_min", "0", "max_ride_min", "minutes > 0"),
    ("bookings", "b2", "max_ride_min", "-5", "max_ride_min", "minutes > 0"),
    ("bookings", "b2", "max_ride_min", "nan", "max_ride_min", "finite"),
    ("bookings", "b2", "max_ride_min", "soon", "max_ride_min", "not a number"),
    ("shifts", "d2", "wheelchair_capacity", "-1", "wheelchair_capacity", "0 or more places"),
    ("shifts", "d3", "stretcher_capacity", "two", "stretcher_capacity", "not a whole number"),
    ("shifts", "d2", "capacity", "-4", "capacity", "must be 0 or more seats"),
    ("shifts", "d1", "break_duration_min", "nan", "break_duration_min", "finite"),
    ("shifts", "d1", "break_duration_min", "0", "break_duration_min", "minutes > 0"),
    ("shifts", "d1", "break_earliest_at", "noon", "break_earliest_at", "not a date and time"),
    (
        "shifts",
        "d1",
        "break_earliest_at",
        "2025-10-20 05:30",
        "break_earliest_at",
        "before the shift starts",
    ),
    (
        "shifts",
        "d1",
        "break_latest_at",
        "2025-10-20 14:45",
        "break_latest_at",
        "ends after the shift",
    ),
    (
        "shifts",
        "d1",
        "break_latest_at",
        "2025-10-20 09:00",
        "break_latest_at",
        "is before its earliest",
    ),
    ("shifts", "d1", "break_latest_at", "", "break_latest_at", "missing: a break needs all"),
    (
        "shifts",
        "d2",
        "break_duration_min",
        "30",
        "break_earliest_at",
        "missing: a break needs all",
    ),
]


@pytest.mark.parametrize(("file", "key", "column", "value", "field", "message"), MALFORMED)
def test_a_malformed_field_skips_its_day_and_is_named(
    tmp_path, file, key, column, value, field, message
):
    bookings, shifts = write_kinds_csvs(tmp_path)
    path = bookings if file == "bookings" else shifts
    line = set_csv_cell(path, key, column, value)

    result = collect_csv(bookings, shifts)

    assert result.days == ()
    (skipped,) = result.skipped
    assert skipped.day == DAY
    problems = [p for p in skipped.problems if p.field == field]
    assert len(problems) == 1, skipped.problems
    (problem,) = problems
    what = "booking" if file == "bookings" else "driver"
    assert problem.record == f"{path.name} line {line}, {what} {key!r}"
    assert message in problem.message
    assert field in skipped.reason


def test_a_booking_needing_a_kind_no_shift_has_is_reported(tmp_path):
    bookings, shifts = write_kinds_csvs(tmp_path)
    set_csv_cell(shifts, "d3", "stretcher_capacity", "")
    set_csv_cell(bookings, "b2", "wheelchair_load", "2")

    result = collect_csv(bookings, shifts)

    assert result.days == ()
    problems = {(p.record.split(", ")[1], p.field): p.message for p in result.skipped[0].problems}
    assert problems == {
        ("booking 'b2'", "wheelchair_load"): (
            "needs 2 wheelchair places; no shift on its day has more than 1"
        ),
        ("booking 'b3'", "stretcher_load"): (
            "needs 1 stretcher place; no shift on its day has one"
        ),
    }


def test_a_booking_whose_places_fit_no_single_vehicle_is_reported(tmp_path):
    bookings, shifts = write_kinds_csvs(tmp_path)
    set_csv_cell(shifts, "d2", "capacity", "0")

    result = collect_csv(bookings, shifts)

    (problem,) = result.skipped[0].problems
    assert (problem.field, problem.message) == (
        "load",
        "needs 1 seated, 1 wheelchair places together; no shift on its day has room for all",
    )
    assert "booking 'b4'" in problem.record


def test_breaks_are_clipped_to_the_service_hours_or_left_out_with_a_note(tmp_path):
    result = collect_csv(*write_kinds_csvs(tmp_path), horizon_min=300.0)

    (collected,) = result.days
    drivers = {driver.id: driver for driver in collected.scenario.drivers}
    assert drivers["d1"].shift == (0.0, 300.0)
    assert drivers["d1"].breaks == (Break(240.0, 270.0, 30.0),)
    assert drivers["d3"].breaks == ()
    assert "shifts.csv line 4, driver 'd3': its break is outside the service hours, left out" in (
        collected.notes
    )


def test_a_cancelled_booking_needing_a_missing_kind_does_not_skip_its_day(tmp_path):
    bookings, shifts = write_kinds_csvs(tmp_path)
    set_csv_cell(shifts, "d3", "stretcher_capacity", "")
    lines = bookings.read_text().splitlines()
    lines[0] += ",status"
    lines[1:] = [
        line + ("," + ("cancelled" if line.startswith("b3") else "")) for line in lines[1:]
    ]
    bookings.write_text("\n".join(lines) + "\n")

    result = collect_csv(bookings, shifts)

    (collected,) = result.days
    assert [b.id for b in collected.scenario.bookings] == ["b1", "b2", "b4"]


def test_the_example_export_in_the_docs_collects(tmp_path):
    docs = (Path(__file__).parents[3] / "docs" / "history.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```csv\n")[1:]]
    bookings_text, shifts_text = blocks[-2], blocks[-1]
    bookings, shifts = write_kinds_csvs(tmp_path, bookings_text, shifts_text)

    result = collect_csv(bookings, shifts, shared_rides=True)

    assert (result.skipped, len(result.days)) == ((), 1)
