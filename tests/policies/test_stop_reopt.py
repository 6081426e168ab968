"""``reopt`` on days of stops: its re-plan shares rides within places by kind, ride limits and
breaks, and keeps what the simulator has committed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rldispatch.domain import Booking, Driver, Places, Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies import make_baseline
from rldispatch.policies.routing import search_parameters
from rldispatch.policies.stop_reopt import StopRideModel, insertion_stops, open_bookings_within
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.stop_kernels import PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator
from rldispatch.sim.validator import check_played_day

GREEDY = search_parameters(None, "PARALLEL_CHEAPEST_INSERTION", "GREEDY_DESCENT")


def clinic_run() -> Scenario:
    """Three seated patients along one road to the same clinic, a wheelchair user beside the
    first; a minibus with a wheelchair place and a car with three seats parked at the far
    end: the minibus takes all four in one trip."""
    to_clinic = (10.0, 0.0)

    def patient(name: str, x: float, **more: object) -> Booking:
        return Booking(name, 0.0, (x, 0.0), to_clinic, 10.0 + x, (x, 40.0 + x), 1.0, **more)

    return Scenario(
        name="clinic-run",
        coords="xy",
        horizon_min=300.0,
        drivers=(
            Driver("bus", (0.0, 0.0), (0.0, 300.0), Places(seated=6, wheelchair=1)),
            Driver("car", (30.0, 30.0), (0.0, 300.0), Places(seated=3)),
        ),
        bookings=(
            patient("p1", 1.0, max_ride_min=30.0),
            patient("p2", 2.0, max_ride_min=30.0),
            patient("p3", 3.0, max_ride_min=30.0),
            patient("w1", 1.5, load=Places(wheelchair=1), max_ride_min=30.0),
        ),
        shared_rides=True,
    )


def test_the_re_plan_pools_the_clinic_run_in_the_minibus() -> None:
    sim = StopDaySimulator(clinic_run())
    bookings = open_bookings_within(sim, 120.0)
    model = StopRideModel(sim, bookings, RewardConfig(), 120.0)
    solution = model.solve(insertion_stops(sim, bookings), GREEDY)
    assert solution is not None
    routes = model.booking_routes(solution)
    assert sorted(routes[0]) == [0, 1, 2, 3] and routes[1] == []
    pickups = model.planned_pickup_min(solution)
    assert set(pickups) == {0, 1, 2, 3}


def test_a_wheelchair_user_is_never_planned_in_a_car() -> None:
    day = clinic_run()
    day = replace(day, drivers=(replace(day.drivers[0], start=(60.0, 60.0)), day.drivers[1]))
    sim = StopDaySimulator(day)
    bookings = open_bookings_within(sim, 120.0)
    model = StopRideModel(sim, bookings, RewardConfig(), 120.0)
    solution = model.solve(None, GREEDY)
    assert solution is not None
    routes = model.booking_routes(solution)
    assert 3 not in routes[1]  # the car has no wheelchair place, however close it is


def test_passengers_on_board_and_committed_stops_stay_with_their_driver() -> None:
    sim = StopDaySimulator(clinic_run())
    sim.assign(0, 0)  # p1 to the minibus
    sim.advance_to(1.5)  # p1 is picked up, on board; the drop-off not yet set off for
    assert sim.onboard_bookings[0] == [0]
    bookings = open_bookings_within(sim, 120.0)
    model = StopRideModel(sim, bookings, RewardConfig(), 120.0)
    solution = model.solve(insertion_stops(sim, bookings), GREEDY)
    assert solution is not None
    node = model.dropoff_node[0]
    index = model.manager.NodeToIndex(node)
    assert solution.Value(model.routing.VehicleVar(index)) == 0
    # the limit of p1's ride counts from the end of its pickup
    dropped = solution.Min(model.clock.CumulVar(index)) / 1000
    assert dropped - sim.picked_done_min[0] <= 30.0 + 0.1


@pytest.mark.slow
def test_reopt_shares_rides_on_a_patient_transport_day_within_the_rules() -> None:
    day = make_preset("geneva-mix", 7)
    day = replace(day, bookings=day.bookings[:30])
    config = EnvConfig(max_drivers=len(day.drivers))
    env = DispatchEnv(preset=None, scenario=day, config=config)
    env.reset(options={"scenario": day})
    policy = make_baseline("reopt")
    terminated = False
    while not terminated:
        action = policy.act(env)
        assert env.action_masks()[action]
        _, _, terminated, _, _ = env.step(action)
    check = check_played_day(env.sim)
    assert check.ok, check.problems
    metrics = env.metrics()
    assert metrics.occupancy > 1.0 and metrics.shared_ride_share > 0.0
    assert policy.replans > 0 and policy.fallbacks < metrics.decisions / 2
    assert sum(stop.kind == PICKUP for stop in env.sim.stop_log) == metrics.served
    assert np.isfinite(metrics.reward)
