"""Reading the Cordeau dial-a-ride instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rldispatch.domain import ScenarioError
from rldispatch.scenarios.cordeau import (
    BEST_KNOWN_COSTS,
    cordeau_text,
    generate_cordeau,
    read_cordeau,
)
from rldispatch.scenarios.files import load_scenario
from tests.helpers import cordeau_dir


def instance_paths() -> list[Path]:
    return sorted(cordeau_dir().glob("a*.txt"))


def header(path: Path) -> list[float]:
    return [float(v) for v in path.read_text().split("\n", 1)[0].split()]


def test_every_published_instance_is_present_and_has_a_best_known_cost():
    names = {path.stem for path in instance_paths()}
    assert names == set(BEST_KNOWN_COSTS)


def test_every_instance_matches_its_header():
    for path in instance_paths():
        instance = read_cordeau(path)
        vehicles, nodes, duration, capacity, ride = header(path)
        assert instance.n_vehicles == vehicles, path.name
        assert 2 * instance.n_requests == nodes, path.name
        assert instance.max_route_duration == duration
        assert instance.capacity == capacity
        assert instance.max_ride_time == ride
        assert instance.name == path.stem
        k, n = path.stem[1:].split("-")
        assert (instance.n_vehicles, instance.n_requests) == (int(k), int(n))


def test_half_the_requests_are_inbound_with_the_narrow_window_on_the_dropoff():
    instance = read_cordeau(cordeau_dir() / "a2-16.txt")
    assert instance.is_inbound.sum() == instance.n_requests // 2
    widths = instance.dropoff_window[:, 1] - instance.dropoff_window[:, 0]
    assert np.all(widths[instance.is_inbound] == 15)


def test_file_without_end_depot_reads_like_one_with_it(tmp_path):
    source = (cordeau_dir() / "a2-20.txt").read_text().rstrip("\n").split("\n")
    assert source[-1].split()[4] == "0"  # a2-20 has the end depot
    trimmed = tmp_path / "a2-20.txt"
    trimmed.write_text("\n".join(source[:-1]) + "\n")
    full, short = read_cordeau(cordeau_dir() / "a2-20.txt"), read_cordeau(trimmed)
    assert short.n_requests == full.n_requests == 20
    assert np.array_equal(short.pickup_window, full.pickup_window)
    assert short.end_depot_window == short.depot_window
    assert full.end_depot_window == (0.0, 600.0)


def test_spaces_instead_of_tabs_read_the_same(tmp_path):
    path = cordeau_dir() / "a2-16.txt"
    spaced = tmp_path / "a2-16.txt"
    spaced.write_text(path.read_text().replace("\t", "   "))
    assert np.array_equal(read_cordeau(spaced).dropoff_xy, read_cordeau(path).dropoff_xy)


def test_requests_are_counted_from_node_lines_not_the_header(tmp_path):
    text = (cordeau_dir() / "a2-16.txt").read_text().split("\n", 1)
    wrong = tmp_path / "wrong-header.txt"
    wrong.write_text("2 40 480 3 30\n" + text[1])
    assert read_cordeau(wrong).n_requests == 16


def test_to_scenario_is_a_valid_simulator_day():
    for path in instance_paths():
        instance = read_cordeau(path)
        scenario = load_scenario(path)
        assert scenario.coords == "xy"
        assert len(scenario.drivers) == instance.n_vehicles
        assert len(scenario.bookings) == instance.n_requests
        assert all(d.capacity == instance.capacity for d in scenario.drivers)
        assert all(d.start == instance.depot_xy for d in scenario.drivers)
        assert all(b.release_min == 0 for b in scenario.bookings)
        assert all(b.requested_min == b.window[0] for b in scenario.bookings)
        assert all(b.window[0] <= b.window[1] for b in scenario.bookings)
        assert scenario.travel.speed_kmh == 60 and scenario.travel.detour == 1


def test_to_scenario_derives_an_inbound_pickup_window_from_the_dropoff_window():
    instance = read_cordeau(cordeau_dir() / "a2-16.txt")
    scenario = instance.to_scenario()
    direct = instance.direct_distance()
    i = int(np.flatnonzero(instance.is_inbound)[0])
    early, late = instance.dropoff_window[i]
    service = instance.pickup_service[i]
    expected = (max(0.0, early - instance.max_ride_time - service), late - service - direct[i])
    assert scenario.bookings[i].window == pytest.approx(expected)
    j = int(np.flatnonzero(~instance.is_inbound)[0])
    assert scenario.bookings[j].window == tuple(instance.pickup_window[j])


def broken_copy(tmp_path: Path, line_no: int, new_line: str) -> Path:
    lines = (cordeau_dir() / "a2-16.txt").read_text().split("\n")
    lines[line_no - 1] = new_line
    path = tmp_path / "broken.txt"
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize(
    ("line_no", "new_line", "expected"),
    [
        (5, "  4\t-2.0\tabc\t3\t1\t0 1440", "line 5: field 'y'"),
        (5, "  4\t-2.0\t1.0\t3\t1\t0", "line 5: expected 7 fields"),
        (1, "2 32 480 3", "line 1: the header needs 5 fields"),
        (1, "two 32 480 3 30", "line 1: field 'vehicles'"),
        (7, "  9\t1.0\t1.0\t3\t1\t0 1440", "line 7: field 'id'"),
        (20, " 18\t1.0\t1.0\t3\t1\t0 1440", "line 20: field 'load'"),
        (5, "  4\t-2.0\t1.0\t3\t1\t90 10", "line 5: field 'latest'"),
    ],
)
def test_broken_file_names_the_line_and_field(tmp_path, line_no, new_line, expected):
    with pytest.raises(ScenarioError, match=expected):
        read_cordeau(broken_copy(tmp_path, line_no, new_line))


def test_broken_file_through_load_scenario_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="line 3"):
        load_scenario(broken_copy(tmp_path, 3, "  2\tx\t7.114\t3\t1\t0 1440"))


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="no such"):
        read_cordeau(tmp_path / "absent.txt")


def test_instance_arrays_are_read_only():
    instance = read_cordeau(cordeau_dir() / "a2-16.txt")
    with pytest.raises(ValueError):
        instance.pickup_xy[0, 0] = 1.0


def small_instance_text(header: str = "2 4 480 3 30") -> str:
    """A two-request instance written in the published format (no shared files needed)."""
    nodes = [
        "0 0.0 0.0 0 0 0 1440",
        "1 1.0 2.0 3 1 0 1440",
        "2 -2.0 1.0 3 1 60 75",
        "3 4.0 4.0 3 -1 100 115",
        "4 -3.0 -1.0 3 -1 0 1440",
        "5 0.0 0.0 0 0 0 1440",
    ]
    return header + "\n" + "\n".join(nodes) + "\n"


def write_instance(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(text)
    return path


def test_small_instance_reads(tmp_path):
    instance = read_cordeau(write_instance(tmp_path, small_instance_text()))
    assert instance.n_requests == 2 and instance.n_vehicles == 2 and instance.capacity == 3


def test_header_claiming_more_vehicles_than_requests_is_refused_without_building_them(tmp_path):
    path = write_instance(tmp_path, small_instance_text("100000000 4 480 3 30"))
    with pytest.raises(ScenarioError, match="'vehicles' is 100000000, more than the 2 requests"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2 4 480 1e20 30", "field 'capacity' '1e20' is out of range"),
        ("2 4 480 3 1e400", "field 'max_ride_time' must be finite"),
        ("2 4 1e300 3 30", "field 'max_route_duration' '1e300' is out of range"),
        ("2 4 480 " + "9" * 400 + " 30", "field 'capacity'"),
    ],
    ids=["capacity-1e20", "ride-time-inf", "route-duration-1e300", "capacity-400-digits"],
)
def test_header_numbers_are_bounded(tmp_path, header, expected):
    with pytest.raises(ScenarioError, match=expected) as caught:
        read_cordeau(write_instance(tmp_path, small_instance_text(header)))
    assert "line 1" in str(caught.value) and "\n" not in str(caught.value)


def test_node_coordinates_are_bounded(tmp_path):
    text = small_instance_text().replace("1 1.0 2.0 3 1", "1 1e300 2.0 3 1")
    with pytest.raises(ScenarioError, match="line 3: field 'x'"):
        read_cordeau(write_instance(tmp_path, text))


def test_binary_instance_file_is_one_line(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ScenarioError, match="not a text file"):
        read_cordeau(path)


# --- generated instances ------------------------------------------------------------------------


def test_a_generated_instance_has_the_published_shape():
    instance = generate_cordeau(120, 10, seed=7)
    assert (instance.n_requests, instance.n_vehicles) == (120, 10)
    assert np.abs(instance.pickup_xy).max() <= 10 and np.abs(instance.dropoff_xy).max() <= 10
    narrow_pickup = instance.pickup_window[:, 1] - instance.pickup_window[:, 0] == 15
    narrow_dropoff = instance.dropoff_window[:, 1] - instance.dropoff_window[:, 0] == 15
    assert np.all(narrow_pickup ^ narrow_dropoff)
    assert narrow_pickup.sum() == narrow_dropoff.sum() == 60
    assert instance.dropoff_window[narrow_dropoff, 1].max() <= instance.max_route_duration - 30


def test_a_generated_instance_depends_only_on_its_seed():
    first, again, other = (generate_cordeau(40, 4, seed=s) for s in (3, 3, 4))
    assert np.array_equal(first.pickup_xy, again.pickup_xy)
    assert np.array_equal(first.dropoff_window, again.dropoff_window)
    assert not np.array_equal(first.pickup_xy, other.pickup_xy)


def test_a_generated_instance_written_out_reads_back_the_same(tmp_path):
    instance = generate_cordeau(30, 3, seed=1, capacity=6, max_ride_time=45, max_load=6)
    path = tmp_path / "g3-30.txt"
    path.write_text(cordeau_text(instance))
    back = read_cordeau(path)
    assert (back.n_vehicles, back.capacity, back.max_ride_time) == (3, 6, 45)
    for field in ("pickup_xy", "dropoff_xy", "pickup_window", "dropoff_window", "load"):
        assert np.array_equal(getattr(back, field), getattr(instance, field)), field
    assert back.end_depot_window == instance.end_depot_window


def test_generating_more_vehicles_than_requests_is_refused():
    with pytest.raises(ScenarioError, match="n_vehicles"):
        generate_cordeau(3, 4, seed=0)
