"""Fuzzing the file readers: any input gives a result or the reader's one-line error.

Three readers, each fed random bytes, random JSON or text, and single-field mutations of a
valid file: the scenario JSON reader (``load_scenario``), the Cordeau reader (``read_cordeau``)
and the history CSV reader (``collect_csv``). Anything else raised (``RecursionError``,
``OverflowError``, ``MemoryError``, ``KeyError``...) fails the test. Runs are derandomised so
CI sees the same inputs every time.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rldispatch.domain import Scenario, ScenarioError, scenario_to_dict
from rldispatch.scenarios.cordeau import CordeauInstance, read_cordeau
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.history import (
    BOOKING_CSV_COLUMNS,
    SHIFT_CSV_COLUMNS,
    CollectResult,
    HistoryError,
    collect_csv,
)
from rldispatch.scenarios.presets import make_preset

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMBER_TEXT = st.sampled_from(
    ["0", "-1", "1e400", "-1e400", "nan", "NaN", "inf", "1e20", "1e308", "9" * 400, "1.5", ""]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**450), max_value=10**450)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
BASE_SCENARIO = scenario_to_dict(make_preset("classic", 0))
BASE_SCENARIO["bookings"] = BASE_SCENARIO["bookings"][:4]


def in_temp_file(name: str, data: bytes, read):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return read(path)


def read_scenario_bytes(data: bytes) -> None:
    try:
        result = in_temp_file("day.json", data, load_scenario)
    except ScenarioError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(result, Scenario)


@st.composite
def mutated_scenarios(draw) -> dict:
    """A valid scenario with one value (at any depth) replaced, or one key added."""
    data = json.loads(json.dumps(BASE_SCENARIO))
    record = data
    for _ in range(draw(st.integers(0, 3))):
        children = list(record.items()) if isinstance(record, dict) else list(enumerate(record))
        containers = [(key, value) for key, value in children if isinstance(value, (dict, list))]
        if not containers:
            break
        _, record = draw(st.sampled_from(containers))
    keys = list(record) if isinstance(record, dict) else list(range(len(record)))
    if isinstance(record, dict) and draw(st.booleans()):
        record[draw(st.text(min_size=1, max_size=12))] = draw(JSON_VALUES)
    elif keys:
        record[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
    return data


@FUZZ
@given(st.binary(max_size=2000))
def test_scenario_reader_on_random_bytes(data):
    read_scenario_bytes(data)


@FUZZ
@given(JSON_VALUES)
def test_scenario_reader_on_random_json(value):
    read_scenario_bytes(json.dumps(value).encode())


@FUZZ
@given(mutated_scenarios())
def test_scenario_reader_on_mutated_scenarios(data):
    read_scenario_bytes(json.dumps(data).encode())


@FUZZ
@given(st.integers(1, 100_000), st.sampled_from("[{"))
def test_scenario_reader_on_deep_nesting(depth, bracket):
    closing = "]" if bracket == "[" else "}"
    opening = bracket if bracket == "[" else '{"a":'
    read_scenario_bytes((opening * depth + "1" + closing * depth).encode())


CORDEAU_LINES = [
    "2 4 480 3 30",
    "0 0.0 0.0 0 0 0 1440",
    "1 1.0 2.0 3 1 0 1440",
    "2 -2.0 1.0 3 1 60 75",
    "3 4.0 4.0 3 -1 100 115",
    "4 -3.0 -1.0 3 -1 0 1440",
    "5 0.0 0.0 0 0 0 1440",
]


def read_cordeau_bytes(data: bytes) -> None:
    try:
        instance = in_temp_file("instance.txt", data, read_cordeau)
    except ScenarioError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(instance, CordeauInstance)
    try:
        assert isinstance(instance.to_scenario(), Scenario)
    except ScenarioError as error:
        assert "\n" not in str(error)


@st.composite
def mutated_cordeau(draw) -> str:
    """The small valid instance with tokens replaced, lines dropped or duplicated."""
    lines = [line.split() for line in CORDEAU_LINES]
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["token", "drop", "duplicate"]))
        if action == "token" and lines[row]:
            column = draw(st.integers(0, len(lines[row]) - 1))
            lines[row][column] = draw(NUMBER_TEXT | st.text(max_size=6))
        elif action == "drop" and len(lines) > 1:
            lines.pop(row)
        else:
            lines.insert(row, list(lines[row]))
    return "\n".join(" ".join(line) for line in lines) + "\n"


@FUZZ
@given(mutated_cordeau())
def test_cordeau_reader_on_mutated_instances(text):
    read_cordeau_bytes(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=2000))
def test_cordeau_reader_on_random_bytes(data):
    read_cordeau_bytes(data)


GOOD_BOOKING = [
    "b1",
    "2025-10-19 12:00",
    "2025-10-20 08:00",
    "2025-10-20 07:50",
    "2025-10-20 08:30",
    "46.2",
    "6.1",
    "46.21",
    "6.12",
]
GOOD_SHIFT = "d1,2025-10-20,2025-10-20 06:00,2025-10-20 20:00,46.2,6.1"
CSV_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | NUMBER_TEXT
TIME_TEXT = st.sampled_from(
    ["0001-01-01 00:00", "9999-12-31 23:59", "2025-02-30 08:00", "2025-10-20T08:00+02:00"]
)


def read_history_bytes(bookings: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        bookings_path, shifts_path = Path(folder) / "b.csv", Path(folder) / "s.csv"
        bookings_path.write_bytes(bookings)
        shifts_path.write_text(",".join(SHIFT_CSV_COLUMNS) + "\n" + GOOD_SHIFT + "\n")
        try:
            result = collect_csv(bookings_path, shifts_path)
        except HistoryError as error:
            assert "\n" not in str(error)
        else:
            assert isinstance(result, CollectResult)


@FUZZ
@given(st.lists(st.lists(CSV_TEXT | TIME_TEXT, min_size=9, max_size=9), max_size=4))
def test_history_csv_reader_on_random_rows(rows):
    rows = [GOOD_BOOKING, *rows]
    text = "\n".join([",".join(BOOKING_CSV_COLUMNS), *(",".join(row) for row in rows)]) + "\n"
    read_history_bytes(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.integers(0, 8), CSV_TEXT | TIME_TEXT)
def test_history_csv_reader_on_one_bad_field(column, value):
    row = list(GOOD_BOOKING)
    row[column] = value
    text = ",".join(BOOKING_CSV_COLUMNS) + "\n" + ",".join(row) + "\n"
    read_history_bytes(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=2000))
def test_history_csv_reader_on_random_bytes(data):
    read_history_bytes(",".join(BOOKING_CSV_COLUMNS).encode() + b"\n" + data)


KINDS_DAY = Path(__file__).parent / "history" / "data" / "kinds_day"
PLACE_RIDE_BREAK_COLUMNS = (
    ("bookings.csv", "b2", "load"),
    ("bookings.csv", "b2", "wheelchair_load"),
    ("bookings.csv", "b3", "stretcher_load"),
    ("bookings.csv", "b3", "max_ride_min"),
    ("shifts.csv", "d2", "capacity"),
    ("shifts.csv", "d2", "wheelchair_capacity"),
    ("shifts.csv", "d3", "stretcher_capacity"),
    ("shifts.csv", "d1", "break_earliest_at"),
    ("shifts.csv", "d1", "break_latest_at"),
    ("shifts.csv", "d3", "break_duration_min"),
)


@FUZZ
@given(st.sampled_from(PLACE_RIDE_BREAK_COLUMNS), CSV_TEXT | TIME_TEXT)
def test_history_csv_reader_on_one_bad_place_ride_or_break_field(where, value):
    name, key, column = where
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for file in ("bookings.csv", "shifts.csv"):
            paths[file] = Path(folder) / file
            paths[file].write_text((KINDS_DAY / file).read_text())
        with paths[name].open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        next(row for row in rows if key in row.values())[column] = value
        with paths[name].open("w", newline="", encoding="utf-8", errors="surrogatepass") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        try:
            result = collect_csv(paths["bookings.csv"], paths["shifts.csv"], shared_rides=True)
        except HistoryError as error:
            assert "\n" not in str(error)
        else:
            assert len(result.days) + len(result.skipped) == 1
