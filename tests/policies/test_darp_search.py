"""The compiled ruin-and-recreate search for Cordeau instances and its route scheduling."""

from __future__ import annotations

import numpy as np
import pytest

from rldispatch.policies.darp_search import darp_data, route_schedule, ruin_recreate
from rldispatch.policies.hindsight import solve_cordeau
from rldispatch.policies.hindsight_check import check_cordeau_solution
from rldispatch.scenarios.cordeau import BEST_KNOWN_COSTS, generate_cordeau, read_cordeau
from tests.helpers import cordeau_dir

PUBLISHED_ROUNDING = 0.005


def line_instance(tmp_path, ride: float, window_2: tuple[float, float]):
    """Two requests on the x axis: 1 from x=1 to x=3, 2 from x=2 to x=4 (service 1)."""
    text = (
        f"1 4 480 2 {ride:g}\n"
        "0 0 0 0 0 0 1440\n"
        "1 1 0 1 1 0 1440\n"
        f"2 2 0 1 1 {window_2[0]:g} {window_2[1]:g}\n"
        "3 3 0 1 -1 0 1440\n"
        "4 4 0 1 -1 0 1440\n"
        "5 0 0 0 0 0 1440\n"
    )
    path = tmp_path / "line.txt"
    path.write_text(text)
    return read_cordeau(path)


def schedule(instance, nodes):
    data = darp_data(instance)
    nodes = np.asarray(nodes, dtype=np.int64)
    start = np.zeros(len(nodes))
    ok = route_schedule(
        nodes, len(nodes), data.n, data.capacity, data.max_ride, data.max_duration,
        data.depot_open, data.depot_close, data.dist, data.service, data.earliest,
        data.latest, data.demand, start, np.zeros(len(nodes)), np.zeros(2 * data.n + 1, np.int64),
    )  # fmt: skip
    return ok, start


def test_schedule_delays_a_pickup_that_would_wait_on_board(tmp_path):
    # Request 2 cannot be picked up before minute 20; picking 1 up at its earliest (1) and
    # waiting would keep it on board for 20 minutes: over the limit of 10, so the schedule
    # must pick 1 up later.
    instance = line_instance(tmp_path, ride=10, window_2=(20, 30))
    ok, start = schedule(instance, [1, 2, 3, 4])
    assert ok
    assert start[1] == pytest.approx(20.0)
    ride_1 = start[2] - (start[0] + 1.0)
    assert ride_1 <= 10 + 1e-9
    assert start[0] == pytest.approx(start[2] - 11.0)


def test_schedule_refuses_a_route_whose_ride_cannot_fit(tmp_path):
    # The pickup windows force picking 1 up before minute 5 and 2 not before minute 20.
    instance = line_instance(tmp_path, ride=10, window_2=(20, 30))
    data_text = (tmp_path / "line.txt").read_text().replace("1 1 0 1 1 0 1440", "1 1 0 1 1 0 5")
    (tmp_path / "line.txt").write_text(data_text)
    instance = read_cordeau(tmp_path / "line.txt")
    ok, _ = schedule(instance, [1, 2, 3, 4])
    assert not ok
    ok, _ = schedule(instance, [1, 3, 2, 4])
    assert ok


def test_a2_16_is_solved_to_its_optimum():
    instance = read_cordeau(cordeau_dir() / "a2-16.txt")
    result = solve_cordeau(instance, time_limit_s=600.0, iteration_limit=100_000)
    assert check_cordeau_solution(instance, result.routes, claimed_cost=result.cost) == []
    best = BEST_KNOWN_COSTS["a2-16"]
    assert best - PUBLISHED_ROUNDING <= result.cost <= best + PUBLISHED_ROUNDING


def test_an_iteration_limit_makes_the_search_repeatable():
    data = darp_data(read_cordeau(cordeau_dir() / "a8-96.txt"))
    first, again = (ruin_recreate(data, 600.0, seed=5, iteration_limit=200) for _ in range(2))
    other = ruin_recreate(data, 600.0, seed=6, iteration_limit=200)
    assert first.routes == again.routes and first.cost == again.cost
    assert first.iterations == 200
    assert other.routes != first.routes


def test_a_generated_144_request_instance_is_solved_feasibly_with_a_short_search():
    instance = generate_cordeau(144, 12, seed=3)
    result = solve_cordeau(instance, time_limit_s=600.0, iteration_limit=500)
    assert result.feasible and not result.dropped
    assert check_cordeau_solution(instance, result.routes, claimed_cost=result.cost) == []
    assert sum(1 for route in result.routes if route) <= instance.n_vehicles


def test_an_unknown_method_is_refused():
    instance = generate_cordeau(4, 1, seed=0)
    with pytest.raises(ValueError, match="method"):
        solve_cordeau(instance, method="tabu")
