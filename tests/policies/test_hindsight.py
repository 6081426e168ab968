"""The hindsight solver, its independent Cordeau checker and ``rldispatch solve``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rldispatch.cli import main
from rldispatch.domain import Booking, Break, Driver, Scenario, TravelConfig
from rldispatch.env import DispatchEnv
from rldispatch.policies.baselines import InsertionPolicy
from rldispatch.policies.hindsight import HindsightResult, Stop, solve_cordeau, solve_scenario
from rldispatch.policies.hindsight_check import check_cordeau_solution, cordeau_cost
from rldispatch.policies.hindsight_cordeau import cordeau_route_metrics
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.cordeau import BEST_KNOWN_COSTS, read_cordeau
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.travel import TravelModel
from rldispatch.training.evaluation import run_day
from tests.helpers import cordeau_dir

PUBLISHED_ROUNDING = 0.005
"""Best-known costs are published rounded to two decimals."""


@pytest.fixture(scope="module")
def a2_16():
    instance = read_cordeau(cordeau_dir() / "a2-16.txt")
    # An iteration limit ends the search (well within the time limit) once it is close to the
    # optimum, on any machine load.
    return instance, solve_cordeau(instance, time_limit_s=60.0, iteration_limit=30_000)


# --- Cordeau ------------------------------------------------------------------------------------


def test_a2_16_is_solved_feasibly_close_to_the_optimum(a2_16):
    instance, result = a2_16
    assert result.feasible and not result.dropped
    assert check_cordeau_solution(instance, result.routes, claimed_cost=result.cost) == []
    best = BEST_KNOWN_COSTS["a2-16"]
    assert best - PUBLISHED_ROUNDING <= result.cost <= 1.10 * best
    assert result.solve_time_s > 0  # compiling the search on first use counts here too
    assert result.vehicles_used <= instance.n_vehicles


def test_a2_16_result_metrics_count_every_request(a2_16):
    instance, result = a2_16
    assert result.metrics is not None
    assert result.metrics.served == result.metrics.bookings == instance.n_requests
    assert result.metrics.distance_km == pytest.approx(result.cost)
    # Rides are shared: more than one passenger on board on part of the loaded km, and a
    # shared ride takes longer than the direct one.
    assert 0 < result.metrics.shared_ride_share <= 1
    assert result.metrics.occupancy > 1
    assert result.metrics.ride_time_ratio > 1
    assert 0 < result.metrics.empty_km < result.cost


def test_cordeau_route_metrics_follow_the_passengers_on_board(tmp_path):
    """One vehicle picks up A at x=1 and B at x=2, drops A at x=4 and B at x=5 (service 1
    minute at each stop, one unit is one km and one minute): 10 km driven, 4 of them
    loaded, 6 passenger km, both rides shared and each 4 minutes for 3 direct."""
    nodes = [(0, 0, 0), (1, 1, 1), (2, 2, 1), (3, 4, -1), (4, 5, -1), (5, 0, 0)]
    lines = ["1 4 480 3 30"]
    for node, x, load in nodes:
        service = 0 if load == 0 else 1
        lines.append(f"{node} {x:.3f} 0.000 {service} {load} 0 1440")
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    instance = read_cordeau(path)
    route = (Stop("1", "pickup", 1.0), Stop("2", "pickup", 3.0))
    route += (Stop("1", "dropoff", 6.0), Stop("2", "dropoff", 8.0))
    assert check_cordeau_solution(instance, [route]) == []
    metrics = cordeau_route_metrics(instance, [route], RewardConfig())
    assert metrics.served == 2 and metrics.distance_km == pytest.approx(10.0)
    assert metrics.empty_km == pytest.approx(6.0)
    assert metrics.occupancy == pytest.approx(6.0 / 4.0)
    assert metrics.shared_ride_share == 1.0
    assert metrics.ride_time_ratio == pytest.approx(4.0 / 3.0)


def with_route(routes, index, new_route):
    return [new_route if k == index else route for k, route in enumerate(routes)]


def busiest_route(result: HindsightResult) -> int:
    return max(range(len(result.routes)), key=lambda k: len(result.routes[k]))


def test_checker_catches_a_dropoff_before_its_pickup(a2_16):
    instance, result = a2_16
    k = busiest_route(result)
    route = list(result.routes[k])
    first = route[0]
    assert first.kind == "pickup"
    drop = next(
        j for j, s in enumerate(route) if s.booking == first.booking and s.kind == "dropoff"
    )
    route[0] = dataclasses.replace(route[drop], time_min=first.time_min)
    route[drop] = dataclasses.replace(first, time_min=route[drop].time_min)
    problems = check_cordeau_solution(instance, with_route(result.routes, k, route))
    assert any("not picked up earlier" in p for p in problems)


def test_checker_catches_a_missed_time_window(a2_16):
    instance, result = a2_16
    k = busiest_route(result)
    route = list(result.routes[k])
    last = route[-1]
    request = int(last.booking) - 1
    window = instance.dropoff_window if last.kind == "dropoff" else instance.pickup_window
    route[-1] = dataclasses.replace(last, time_min=float(window[request, 1]) + 5.0)
    problems = check_cordeau_solution(instance, with_route(result.routes, k, route))
    assert any("outside its window" in p for p in problems)


def test_checker_catches_an_unreachable_start_time(a2_16):
    instance, result = a2_16
    k = busiest_route(result)
    route = list(result.routes[k])
    route[1] = dataclasses.replace(route[1], time_min=route[0].time_min)
    problems = check_cordeau_solution(instance, with_route(result.routes, k, route))
    assert any("the vehicle arrives" in p for p in problems)


def test_checker_catches_an_unserved_request_and_a_wrong_cost(a2_16):
    instance, result = a2_16
    k = busiest_route(result)
    routes = with_route(result.routes, k, ())
    problems = check_cordeau_solution(instance, routes, claimed_cost=result.cost)
    assert any("never picked up" in p for p in problems)
    assert any("claimed cost" in p for p in problems)


def two_request_instance(tmp_path: Path, capacity: int):
    text = (
        f"1 4 480 {capacity} 30\n"
        "0 0 0 0 0 0 1440\n"
        "1 1 0 1 1 0 1440\n"
        "2 2 0 1 1 0 1440\n"
        "3 3 0 1 -1 0 1440\n"
        "4 4 0 1 -1 0 1440\n"
        "5 0 0 0 0 0 1440\n"
    )
    path = tmp_path / f"pool-{capacity}.txt"
    path.write_text(text)
    return read_cordeau(path)


def pooled_route() -> list[Stop]:
    # Along the x axis: pick up 1 at x=1, 2 at x=2, drop 1 at x=3, drop 2 at x=4, service 1.
    return [Stop("1", "pickup", 1.0), Stop("2", "pickup", 3.0), Stop("1", "dropoff", 5.0),
            Stop("2", "dropoff", 7.0)]  # fmt: skip


def test_checker_catches_load_above_capacity(tmp_path):
    instance = two_request_instance(tmp_path, capacity=1)
    problems = check_cordeau_solution(instance, [pooled_route()])
    assert any("exceeds capacity" in p for p in problems)


def test_checker_accepts_the_same_pooled_route_when_it_fits(tmp_path):
    instance = two_request_instance(tmp_path, capacity=2)
    assert check_cordeau_solution(instance, [pooled_route()], claimed_cost=8.0) == []
    assert cordeau_cost(instance, [pooled_route()]) == pytest.approx(8.0)


def test_checker_catches_a_ride_above_the_limit(tmp_path):
    instance = two_request_instance(tmp_path, capacity=2)
    route = pooled_route()
    route[2:] = [Stop("1", "dropoff", 40.0), Stop("2", "dropoff", 42.0)]
    problems = check_cordeau_solution(instance, [route])
    assert any("ride time" in p and "request 1" in p for p in problems)


def test_solver_pools_rides_when_capacity_allows(tmp_path):
    instance = two_request_instance(tmp_path, capacity=2)
    result = solve_cordeau(instance, time_limit_s=0.5)
    assert check_cordeau_solution(instance, result.routes, claimed_cost=result.cost) == []
    assert result.cost == pytest.approx(8.0)


# --- scenarios ----------------------------------------------------------------------------------


def booking(booking_id: str, pickup, dropoff, window, requested=None, load=1) -> Booking:
    return Booking(
        id=booking_id,
        release_min=0.0,
        pickup=pickup,
        dropoff=dropoff,
        requested_min=window[0] if requested is None else requested,
        window=window,
        service_min=1.0,
        load=load,
    )


def small_day(extra: tuple[Booking, ...] = ()) -> Scenario:
    """Two drivers on a line, 60 km/h so one km is one minute."""
    bookings = (
        booking("b1", (1.0, 0.0), (3.0, 0.0), (5.0, 20.0)),
        booking("b2", (4.0, 0.0), (6.0, 0.0), (20.0, 60.0)),
        booking("b3", (0.0, 5.0), (0.0, 8.0), (10.0, 30.0)),
        booking("b4", (0.0, 9.0), (0.0, 12.0), (40.0, 80.0)),
        *extra,
    )
    drivers = (
        Driver("d1", (0.0, 0.0), (0.0, 240.0), capacity=1),
        Driver("d2", (0.0, 0.0), (0.0, 240.0), capacity=4),
    )
    travel = TravelConfig(speed_kmh=60.0, detour=1.0, start_hour=0.0)
    return Scenario("small", "xy", 240.0, drivers, bookings, travel)


def test_solve_scenario_serves_every_booking_of_an_easy_day():
    result = solve_scenario(small_day(), time_limit_s=0.5)
    assert result.feasible
    assert result.dropped == ()
    assert result.metrics.completion_rate == 1.0
    assert result.metrics.cancelled == 0
    served = sorted(
        stop.booking for route in result.routes for stop in route if stop.kind == "pickup"
    )
    assert served == ["b1", "b2", "b3", "b4"]


def test_solve_scenario_drops_the_booking_nobody_can_reach():
    far = booking("far", (50.0, 0.0), (51.0, 0.0), (0.0, 10.0))
    result = solve_scenario(small_day((far,)), time_limit_s=0.5)
    assert result.dropped == ("far",)
    assert result.metrics.served == 4
    assert result.metrics.cancelled == 1
    assert result.metrics.completion_rate == pytest.approx(0.8)


def test_solve_scenario_gives_a_heavy_booking_to_a_driver_who_can_carry_it():
    heavy = booking("heavy", (2.0, 2.0), (3.0, 3.0), (60.0, 120.0), load=3)
    result = solve_scenario(small_day((heavy,)), time_limit_s=0.5)
    assert result.dropped == ()
    d2 = result.vehicles.index("d2")
    assert "heavy" in {stop.booking for stop in result.routes[d2]}


def test_solve_scenario_schedule_and_metrics_agree_with_the_travel_model():
    scenario = small_day((booking("late", (2.0, 0.0), (2.0, 1.0), (30.0, 40.0), requested=10.0),))
    reward = RewardConfig()
    result = solve_scenario(scenario, time_limit_s=0.5, reward=reward)
    travel = TravelModel(scenario)
    by_id = {b.id: b for b in scenario.bookings}
    distance_km = 0.0
    rides = []
    late = 0
    for driver, route in zip(scenario.drivers, result.routes, strict=True):
        here, free_min = np.asarray(driver.start), driver.shift[0]
        pickups = [stop for stop in route if stop.kind == "pickup"]
        dropoffs = [stop for stop in route if stop.kind == "dropoff"]
        rides.append(len(pickups))
        for pick, drop in zip(pickups, dropoffs, strict=True):
            b = by_id[pick.booking]
            assert drop.booking == b.id
            leg_km = float(travel.distance_km(here, np.asarray(b.pickup)))
            ride_km = float(travel.distance_km(np.asarray(b.pickup), np.asarray(b.dropoff)))
            assert pick.time_min == pytest.approx(max(free_min + leg_km, b.window[0]))
            assert b.window[0] <= pick.time_min <= b.window[1] + 1e-9
            assert drop.time_min == pytest.approx(pick.time_min + b.service_min + ride_km)
            free_min = drop.time_min + b.service_min
            here = np.asarray(b.dropoff)
            distance_km += leg_km + ride_km
            late += pick.time_min > b.requested_min + 5.0
        assert free_min <= driver.shift[1]
    metrics = result.metrics
    assert late >= 1  # "late" cannot be picked up before minute 30, requested at 10
    assert metrics.late_pickup_rate == pytest.approx(late / metrics.served)
    assert metrics.distance_km == pytest.approx(distance_km)
    assert result.cost == pytest.approx(distance_km)
    assert metrics.decisions == 0
    assert metrics.load_gap == max(rides) - min(rides)
    expected = reward.day_reward(
        assigned=metrics.served,
        late_pickups=late,
        cancelled=metrics.cancelled,
        distance_km=distance_km,
        rides_per_driver=np.asarray(rides),
    )
    assert metrics.reward == pytest.approx(expected)


def test_solve_scenario_reports_occupancy_and_ride_time_as_the_simulator_does():
    """A plan of whole bookings carries each booking's load over its ride and goes straight to
    its drop-off: occupancy is the served passenger km over the loaded km and the ride time
    is the direct time, the figures the simulator gives such a day (not 0, as if unmeasured)."""
    heavy = booking("heavy", (2.0, 2.0), (3.0, 3.0), (60.0, 120.0), load=3)
    scenario = small_day((heavy,))
    result = solve_scenario(scenario, time_limit_s=0.5)
    travel = TravelModel(scenario)
    by_id = {b.id: b for b in scenario.bookings}
    served = [by_id[s.booking] for route in result.routes for s in route if s.kind == "pickup"]
    ride_km = [
        float(travel.distance_km(np.asarray(b.pickup), np.asarray(b.dropoff))) for b in served
    ]
    passenger_km = sum(km * sum(b.load.as_tuple()) for km, b in zip(ride_km, served, strict=True))
    assert len(served) == 5
    assert result.metrics.occupancy == pytest.approx(passenger_km / sum(ride_km))
    assert result.metrics.occupancy > 1.0
    assert result.metrics.ride_time_ratio == 1.0
    assert result.metrics.shared_ride_share == 0.0
    played = run_day(InsertionPolicy(), DispatchEnv(preset=None, scenario=scenario), scenario)
    assert played.ride_time_ratio == 1.0


def test_result_serialises_to_json_and_prints_a_summary():
    result = solve_scenario(small_day(), time_limit_s=0.5)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"feasible", "cost", "metrics", "routes"} <= set(data)
    assert data["metrics"]["served"] == 4
    assert "feasible: True" in str(result)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_solves_a_cordeau_file_and_writes_json(tmp_path, capsys):
    out = tmp_path / "out" / "a2-16.json"
    path = cordeau_dir() / "a2-16.txt"
    code = main(["solve", "--scenario", str(path), "--time-limit", "0.5", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["feasible"] is True
    assert data["checker_problems"] == []
    assert math.isfinite(data["cost"]) and data["cost"] >= BEST_KNOWN_COSTS["a2-16"] - 0.005
    assert data["metrics"]["served"] == 16
    assert sum(len(route["stops"]) for route in data["routes"]) == 32
    assert "gap" in capsys.readouterr().out


def test_cli_solves_a_json_scenario(tmp_path):
    scenario_path = save_scenario(small_day(), tmp_path / "small.json")
    out = tmp_path / "small-solution.json"
    code = main(
        ["solve", "--scenario", str(scenario_path), "--time-limit", "0.5", "--json", str(out)]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["feasible"] is True
    assert data["metrics"]["completion_rate"] == 1.0
    assert {route["vehicle"] for route in data["routes"]} == {"d1", "d2"}


def test_cli_refuses_a_missing_file_with_exit_code_2(tmp_path, capsys):
    assert main(["solve", "--scenario", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_hindsight_plan_of_a_day_of_stops_shares_rides_and_keeps_the_rules():
    day = Scenario(
        name="corridor",
        coords="xy",
        horizon_min=300.0,
        drivers=(
            Driver("bus", (0.0, 0.0), (0.0, 300.0), capacity=2, breaks=(Break(60.0, 90.0, 20.0),)),
        ),
        bookings=tuple(
            Booking(name, 0.0, pickup, dropoff, earliest, (earliest, earliest + 30.0), 1.0)
            for name, pickup, dropoff, earliest in (
                ("b1", (1.0, 0.0), (20.0, 0.0), 10.0),
                ("b2", (3.0, 0.0), (20.0, 0.5), 12.0),
            )
        ),
        travel=TravelConfig(speed_kmh=60.0, detour=1.0, start_hour=0.0),
        shared_rides=True,
    )
    result = solve_scenario(day, time_limit_s=0.5)
    assert result.feasible and not result.dropped, result.notes
    assert [stop.kind for stop in result.routes[0]] == ["pickup", "pickup", "dropoff", "dropoff"]
    assert result.metrics.shared_ride_share == 1.0 and result.metrics.breaks_taken == 1


@pytest.mark.slow
def test_the_hindsight_plan_of_a_geneva_mix_day_is_never_worse_than_insertion():
    day = make_preset("geneva-mix", 2_000_000)
    env = DispatchEnv(preset=None, scenario=day)
    insertion = run_day(InsertionPolicy(), env, day)
    result = solve_scenario(day, time_limit_s=3.0)
    assert result.metrics.reward >= insertion.reward - 1e-9
    assert result.metrics.breaks_missed == 0
