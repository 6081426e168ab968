"""The live snapshot computes what DispatchEnv computes on the same snapshot scenario."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rldispatch.domain import Booking, Driver
from rldispatch.env import DRIVER_FEATURES, DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.snapshot import LiveDay, LiveRequest, LiveSnapshot, snapshot_scenario

DAY = LiveDay.from_preset("geneva")
DAY_START_MIN = DAY.travel.start_hour * 60.0


def random_request(seed: int, max_drivers: int = 10) -> LiveRequest:
    """Drivers free now or later, bookings open or opening, some past the lookahead."""
    rng = np.random.default_rng(seed)
    places = make_preset("geneva", seed).bookings
    n_drivers = int(rng.integers(1, max_drivers + 1))
    drivers = tuple(
        Driver(
            id=f"d{i}",
            start=places[int(rng.integers(len(places)))].dropoff,
            shift=(float(rng.choice([0.0, rng.uniform(0.0, 60.0)])), float(rng.uniform(61, 400))),
            capacity=int(rng.integers(1, 3)),
        )
        for i in range(n_drivers)
    )
    bookings = []
    for j in range(int(rng.integers(1, 40))):
        place = places[int(rng.integers(len(places)))]
        opens = float(rng.uniform(-30.0, 200.0))
        closes = max(opens + float(rng.uniform(0.0, 60.0)), float(rng.uniform(0.0, 5.0)))
        bookings.append(
            Booking(
                id=f"b{j}",
                release_min=0.0,
                pickup=place.pickup,
                dropoff=place.dropoff,
                requested_min=opens + 10.0,
                window=(opens, closes),
                service_min=3.0,
                priority=int(rng.integers(2)),
                load=int(rng.integers(1, 3)),
            )
        )
    return LiveRequest(
        booking=bookings[0],
        drivers=drivers,
        minute_of_day=DAY_START_MIN,
        open_bookings=tuple(bookings[1:]),
    )


def env_on(request: LiveRequest, config: EnvConfig) -> DispatchEnv:
    scenario = snapshot_scenario(request, DAY)
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset(options={"scenario": scenario})
    return env


@pytest.mark.parametrize("slots", [5, 20])
def test_snapshot_matches_the_env_on_random_requests(slots: int) -> None:
    config = EnvConfig(visible_slots=slots)
    compared = 0
    for seed in range(60):
        request = random_request(seed)
        snapshot = LiveSnapshot(request, DAY, config)
        env = env_on(request, config)
        if env.sim.now_min > 0:  # nothing feasible now: the env moved its clock on
            assert not snapshot.action_mask()[1:].any()
            continue
        compared += 1
        np.testing.assert_array_equal(snapshot.visible, env.visible)
        np.testing.assert_array_equal(snapshot.action_mask(), env.action_masks())
        np.testing.assert_allclose(snapshot.observation(), env.observation(), atol=1e-6)
        table = env.table
        np.testing.assert_array_equal(snapshot.feasible, table.feasible)
        np.testing.assert_allclose(
            snapshot.cost[table.feasible], table.cost[table.feasible], rtol=1e-9
        )
        np.testing.assert_allclose(
            snapshot.pickup_min[table.feasible], table.pickup_min[table.feasible], rtol=1e-9
        )
    assert compared >= 30


def test_rides_today_fill_the_rides_feature_as_the_env_would() -> None:
    request = random_request(3)
    rides = tuple(range(2, 2 + len(request.drivers)))
    request = replace(request, rides_today=rides)
    env = env_on(request, EnvConfig())
    env.sim.rides[:] = rides
    snapshot = LiveSnapshot(request, DAY, EnvConfig())
    np.testing.assert_allclose(snapshot.observation(), env.observation(), atol=1e-6)
    n = len(rides)
    features = snapshot.observation()[: n * DRIVER_FEATURES].reshape(n, DRIVER_FEATURES)
    np.testing.assert_allclose(features[:, 3], np.array(rides) / 10.0, rtol=1e-6)


def test_time_of_day_is_the_share_of_the_service_day_gone_by() -> None:
    request = replace(random_request(4), minute_of_day=DAY_START_MIN + DAY.horizon_min / 4)
    assert LiveSnapshot(request, DAY, EnvConfig()).observation()[-2] == pytest.approx(0.25)
    early = replace(request, minute_of_day=DAY_START_MIN - 60.0)
    assert LiveSnapshot(early, DAY, EnvConfig()).observation()[-2] == 0.0


def test_booking_beyond_the_lookahead_has_no_slot() -> None:
    request = random_request(5)
    late = replace(request.booking, window=(200.0, 240.0), requested_min=210.0)
    snapshot = LiveSnapshot(replace(request, booking=late), DAY, EnvConfig())
    assert snapshot.booking_slot == -1
    assert not snapshot.booking_feasible().any()
