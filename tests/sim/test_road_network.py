"""Road-network travel: an OpenStreetMap extract written here, its graph, its fastest routes
by hand, and days played and solved on it."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rldispatch.domain import Booking, Driver, Scenario, ScenarioError, TravelConfig
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.hindsight import solve_scenario
from rldispatch.scenarios.files import load_scenario, save_scenario
from rldispatch.scenarios.presets import GENEVA_CENTRE, make_preset
from rldispatch.scenarios.street_grid import write_street_grid
from rldispatch.sim.road_network import (
    RoadNetwork,
    RoadNetworkError,
    load_road_network,
    parse_maxspeed,
    way_directions,
    way_speed_kmh,
)
from rldispatch.sim.simulator import DaySimulator
from rldispatch.sim.stop_simulator import StopDaySimulator
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import run_day

# Points on the equator and 0.01 degrees north of it (lat, lon).
A, B, C, D, E, F = (0.0, 0.0), (0.0, 0.01), (0.0, 0.02), (0.01, 0.02), (0.01, 0.0), (0.05, 0.05)


def km_between(p: tuple[float, float], q: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*p, *q))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def minutes(km: float, kmh: float) -> float:
    return km / kmh * 60.0


def write_town(path: Path) -> Path:
    """A loop A -> C -> D -> E -> A with a road back from C to A, a dead end to F, a footway
    and a private road (see the tests for which way each goes)."""
    import osmium
    from osmium.osm.mutable import Node, Way

    writer = osmium.SimpleWriter(str(path))
    for node_id, (lat, lon) in enumerate((A, B, C, D, E, F), start=1):
        writer.add_node(Node(id=node_id, location=(lon, lat)))
    ways = [
        ([1, 2, 3], {"highway": "residential", "maxspeed": "50"}),  # A-B-C, both ways, 50
        ([3, 4], {"highway": "primary", "oneway": "yes"}),  # C -> D only, 60
        ([4, 5], {"highway": "residential"}),  # D-E, both ways, 30
        ([5, 1], {"highway": "tertiary", "oneway": "yes"}),  # E -> A only, 40
        ([4, 6], {"highway": "residential", "oneway": "yes"}),  # D -> F, no way back
        ([1, 6], {"highway": "footway"}),  # not for cars
        ([3, 5], {"highway": "service", "access": "private"}),  # not for us
    ]
    for way_id, (nodes, tags) in enumerate(ways, start=10):
        writer.add_way(Way(id=way_id, nodes=nodes, tags=tags))
    writer.close()
    return path


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_town(tmp_path_factory.mktemp("roads") / "town.osm.pbf")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    return write_street_grid(folder / "grid.osm.pbf", GENEVA_CENTRE, 16, 16, spacing_km=0.8)


def nodes_of(network: RoadNetwork, *points: tuple[float, float]) -> list[int]:
    return network.snap(np.asarray(points)).tolist()


def test_maxspeed_tags_and_one_way_tags_are_read_as_documented() -> None:
    assert parse_maxspeed("50") == 50.0
    assert parse_maxspeed("50 km/h") == 50.0
    assert parse_maxspeed("30 mph") == pytest.approx(48.28032)
    assert parse_maxspeed("50;30") == 50.0
    for unusable in ("none", "walk", "CH:urban", "", None, "0"):
        assert parse_maxspeed(unusable) is None
    assert way_directions({"highway": "residential"}) == (True, True)
    assert way_directions({"highway": "residential", "oneway": "yes"}) == (True, False)
    assert way_directions({"highway": "residential", "oneway": "-1"}) == (False, True)
    assert way_directions({"highway": "primary", "junction": "roundabout"}) == (True, False)
    assert way_directions({"highway": "motorway"}) == (True, False)
    assert way_directions({"highway": "motorway", "oneway": "no"}) == (True, True)
    assert way_speed_kmh({"highway": "residential"}) == 30.0
    assert way_speed_kmh({"highway": "residential", "maxspeed": "CH:urban"}) == 30.0
    assert way_speed_kmh({"highway": "footway"}) is None
    assert way_speed_kmh({"highway": "primary", "motor_vehicle": "no"}) is None


def test_the_graph_keeps_junctions_of_drivable_roads_reachable_both_ways(town: Path) -> None:
    network = RoadNetwork.from_osm(town)
    # B lies inside a way (not a junction); F cannot be left by car.
    assert network.nodes == 4
    assert network.dropped_nodes == 1
    a, c, d, e = nodes_of(network, A, C, D, E)
    assert len({a, c, d, e}) == 4
    assert nodes_of(network, B) in ([a], [c])  # the nearest junction
    assert nodes_of(network, (0.049, 0.049)) == [d]  # F is gone: snapped to its nearest node


def test_fastest_routes_follow_one_way_streets_and_the_speeds_by_hand(town: Path) -> None:
    network = RoadNetwork.from_osm(town)
    a, c, d, e = nodes_of(network, A, C, D, E)
    ac = km_between(A, B) + km_between(B, C)
    cd, de, ea = km_between(C, D), km_between(D, E), km_between(E, A)
    expected = {
        (a, c): (minutes(ac, 50), ac),  # maxspeed 50 over the residential default 30
        (c, a): (minutes(ac, 50), ac),
        (c, d): (minutes(cd, 60), cd),
        (a, d): (minutes(ac, 50) + minutes(cd, 60), ac + cd),
        (d, a): (minutes(de, 30) + minutes(ea, 40), de + ea),
        # C -> D is one-way: from D to C is all the way round through E and A.
        (d, c): (minutes(de, 30) + minutes(ea, 40) + minutes(ac, 50), de + ea + ac),
        # E -> A is one-way: from A to E is round through C and D.
        (a, e): (minutes(ac, 50) + minutes(cd, 60) + minutes(de, 30), ac + cd + de),
    }
    for (origin, destination), (want_min, want_km) in expected.items():
        got_min, got_km = network.route(origin, destination)
        assert got_min == pytest.approx(want_min, rel=1e-6), (origin, destination)
        assert got_km == pytest.approx(want_km, rel=1e-6), (origin, destination)
    table_min, table_km = network.matrix(np.array([a, c, d, e]))
    assert table_min[2, 1] == pytest.approx(expected[(d, c)][0], rel=1e-6)
    assert table_km[0, 3] == pytest.approx(expected[(a, e)][1], rel=1e-6)
    assert np.all(np.diag(table_min) == 0.0)


def test_rows_are_computed_once_and_then_read_from_the_cache(town: Path) -> None:
    network = RoadNetwork.from_osm(town)
    nodes = np.arange(network.nodes)
    first = network.matrix(nodes)
    assert (network.cache_misses, network.cache_hits) == (4, 0)
    again = network.matrix(nodes[::-1])
    assert (network.cache_misses, network.cache_hits) == (4, 4)
    assert np.array_equal(again[0], first[0][::-1, ::-1])
    day = network.day_tables(nodes)
    assert network.day_tables(nodes) is day
    assert network.table_hits == 1
    assert np.array_equal(day[1], first[1])


def test_a_missing_or_broken_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RoadNetworkError, match="nowhere.osm.pbf: no such file"):
        load_road_network(tmp_path / "nowhere.osm.pbf")
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"not an extract")
    with pytest.raises(RoadNetworkError, match="broken.osm.pbf: not a readable OpenStreetMap"):
        load_road_network(broken)
    import osmium
    from osmium.osm.mutable import Node, Way

    paths = tmp_path / "paths.osm.pbf"
    writer = osmium.SimpleWriter(str(paths))
    writer.add_node(Node(id=1, location=(0.0, 0.0)))
    writer.add_node(Node(id=2, location=(0.01, 0.0)))
    writer.add_way(Way(id=1, nodes=[1, 2], tags={"highway": "footway"}))
    writer.close()
    with pytest.raises(RoadNetworkError, match="paths.osm.pbf: no drivable road"):
        load_road_network(paths)


def town_day(town: Path, hourly: tuple[float, ...]) -> Scenario:
    """A driver at A and a booking from D to A requested in the day's first hour."""
    return Scenario(
        name="town",
        coords="latlon",
        horizon_min=600,
        drivers=(Driver(id="d1", start=A, shift=(0.0, 600.0)),),
        bookings=(
            Booking(
                id="b1",
                release_min=0.0,
                pickup=D,
                dropoff=A,
                requested_min=30.0,
                window=(0.0, 200.0),
                service_min=2.0,
            ),
        ),
        travel=TravelConfig(
            speed_kmh=35.0, start_hour=6.0, hourly_speed_factor=hourly, road_network=str(town)
        ),
    )


def test_a_day_on_roads_times_legs_by_the_routes_and_the_hourly_factor(town: Path) -> None:
    slow_first_hour = (1.0,) * 6 + (0.5,) + (1.0,) * 17
    sim = DaySimulator(town_day(town, slow_first_hour))
    ac, cd = km_between(A, C), km_between(C, D)
    de, ea = km_between(D, E), km_between(E, A)
    ride_free_min = minutes(de, 30) + minutes(ea, 40)
    assert sim.ride_km[0] == pytest.approx(de + ea, rel=1e-6)
    assert sim.ride_min[0] == pytest.approx(ride_free_min / 0.5, rel=1e-6)
    table = sim.best_insertions(np.array([0]))
    approach_min = (minutes(ac, 50) + minutes(cd, 60)) / 0.5
    assert table.pickup_min[0, 0] == pytest.approx(approach_min, rel=1e-6)
    assert table.added_km[0, 0] == pytest.approx(ac + cd + de + ea, rel=1e-6)


def test_the_formula_stays_the_default_and_a_road_network_needs_latlon(town: Path) -> None:
    day = town_day(town, (1.0,) * 24)
    formula = replace(day, travel=replace(day.travel, road_network=None))
    assert not DaySimulator(formula).travel.on_roads
    assert DaySimulator(formula).ride_km[0] != pytest.approx(DaySimulator(day).ride_km[0])
    with pytest.raises(ScenarioError, match="travel.road_network: needs coords 'latlon'"):
        Scenario(
            name="xy",
            coords="xy",
            horizon_min=60,
            drivers=(Driver(id="d1", start=(0.0, 0.0), shift=(0.0, 60.0)),),
            bookings=(),
            travel=TravelConfig(road_network=str(town)),
        )


def test_a_scenario_file_names_its_road_network_beside_it(town: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copy(town, tmp_path / "town.osm.pbf")
    day = replace(town_day(town, (1.0,) * 24), travel=TravelConfig(road_network="town.osm.pbf"))
    save_scenario(day, tmp_path / "day.json")
    loaded = load_scenario(tmp_path / "day.json")
    assert loaded.travel.road_network == str(tmp_path / "town.osm.pbf")
    (tmp_path / "town.osm.pbf").unlink()
    with pytest.raises(ScenarioError, match="travel.road_network: no such file 'town.osm.pbf'"):
        load_scenario(tmp_path / "day.json")


def on_roads(day: Scenario, road_network: Path) -> Scenario:
    return replace(day, travel=replace(day.travel, road_network=str(road_network)))


@pytest.mark.parametrize("policy", ["insertion", "reopt"])
def test_a_geneva_day_plays_on_a_street_grid_within_the_rules(grid: Path, policy: str) -> None:
    formula_day = make_preset("geneva", 11)
    day = on_roads(formula_day, grid)
    env = DispatchEnv(config=EnvConfig(max_drivers=len(day.drivers)))
    played = run_day(make_baseline(policy), env, day)
    sim = env.sim
    assert sim.travel.on_roads
    assert check_played_day(sim).ok
    assert played.served > 0.8 * played.bookings
    # A ride's km and time are its fastest route's on the grid.
    network = load_road_network(grid)
    booking = day.bookings[0]
    origin, destination = network.snap(np.asarray([booking.pickup, booking.dropoff]))
    route_min, route_km = network.route(int(origin), int(destination))
    assert sim.ride_km[0] == pytest.approx(route_km, rel=1e-6)
    assert sim.ride_min[0] * day.travel.hourly_speed_factor[
        int(day.travel.start_hour + booking.requested_min // 60) % 24
    ] == pytest.approx(route_min, rel=1e-5)
    on_formula = run_day(make_baseline(policy), env, formula_day)
    assert played.distance_km != pytest.approx(on_formula.distance_km, rel=1e-3)


def test_shared_rides_play_on_a_street_grid_within_the_rules(grid: Path) -> None:
    day = on_roads(make_preset("geneva-mix", 4), grid)
    env = DispatchEnv(config=EnvConfig(max_drivers=len(day.drivers)))
    played = run_day(make_baseline("insertion"), env, day)
    assert isinstance(env.sim, StopDaySimulator)
    assert check_played_day(env.sim).ok
    assert played.served > 0


def test_the_hindsight_plan_on_roads_passes_the_independent_checker(grid: Path) -> None:
    day = on_roads(make_preset("geneva", 12), grid)
    result = solve_scenario(day, time_limit_s=2.0)
    assert result.feasible
    assert result.notes == ()
    online = run_day(make_baseline("insertion"), DispatchEnv(config=EnvConfig()), day)
    assert result.metrics.served >= online.served
