"""Invariants of the simulator on random days and random valid action sequences."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Booking, Driver, Scenario
from rldispatch.env import DispatchEnv
from rldispatch.sim.simulator import ASSIGNED, CANCELLED, OPEN, SERVED, UNRELEASED


@st.composite
def scenarios(draw):
    n_drivers = draw(st.integers(1, 6))
    n_bookings = draw(st.integers(0, 25))
    coord = st.floats(-20.0, 20.0, allow_nan=False)
    drivers = []
    for i in range(n_drivers):
        start = draw(st.floats(0.0, 200.0))
        length = draw(st.floats(30.0, 400.0))
        drivers.append(
            Driver(
                id=f"d{i}",
                start=(draw(coord), draw(coord)),
                shift=(start, start + length),
                capacity=draw(st.integers(1, 3)),
            )
        )
    bookings = []
    for i in range(n_bookings):
        release = draw(st.floats(0.0, 300.0))
        earliest = release + draw(st.floats(0.0, 120.0))
        latest = earliest + draw(st.floats(0.0, 60.0))
        bookings.append(
            Booking(
                id=f"b{i}",
                release_min=release,
                pickup=(draw(coord), draw(coord)),
                dropoff=(draw(coord), draw(coord)),
                requested_min=earliest + draw(st.floats(0.0, latest - earliest)),
                window=(earliest, latest),
                service_min=draw(st.floats(0.0, 5.0)),
                priority=draw(st.integers(0, 1)),
                load=draw(st.integers(1, 3)),
            )
        )
    return Scenario(
        name="random",
        coords="xy",
        horizon_min=600.0,
        drivers=tuple(drivers),
        bookings=tuple(bookings),
    )


def play(scenario, seed):
    env = DispatchEnv(preset=None, scenario=scenario)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    sim = env.sim
    clocks, loads_ok, distances = [sim.now_min], True, [sim.distance_km]
    assigned_once = set()
    terminated = False
    while not terminated:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        if action:
            driver, slot = divmod(action - 1, env.config.visible_slots)
            booking = int(env.visible[slot])
            assert booking not in assigned_once, "a booking is given out once"
            assigned_once.add(booking)
            loads_ok &= sim.load[booking] <= sim.capacity[driver]
        _, _, terminated, _, info = env.step(action)
        clocks.append(sim.now_min)
        distances.append(sim.distance_km)
        counts = np.bincount(sim.status, minlength=5)
        assert counts.sum() == sim.n_bookings
    return env, info["metrics"], clocks, distances, loads_ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_day_invariants(scenario, seed):
    env, metrics, clocks, distances, loads_ok = play(scenario, seed)
    sim = env.sim
    served = sim.status == SERVED
    # every booking ends served or cancelled, none twice
    assert not np.any(np.isin(sim.status, [UNRELEASED, OPEN, ASSIGNED]))
    assert served.sum() + (sim.status == CANCELLED).sum() == sim.n_bookings
    assert metrics["served"] == served.sum()
    assert sim.rides.sum() == served.sum()
    # load within capacity
    assert loads_ok
    assert np.all(sim.load[served] <= sim.capacity[sim.assigned_driver[served]])
    # pickups inside their windows
    assert np.all(sim.pickup_min[served] >= sim.earliest_min[served] - 1e-9)
    assert np.all(sim.pickup_min[served] <= sim.latest_min[served] + 1e-6)
    # the clock never goes back, km never negative or shrinking
    assert all(b >= a for a, b in zip(clocks, clocks[1:], strict=False))
    assert all(d >= -1e-9 for d in distances)
    assert metrics["distance_km"] >= -1e-9
    late = sim.pickup_min[served] > sim.requested_min[served] + LATE_AFTER_REQUESTED_MIN
    assert sim.late_pickups == int(late.sum())


@settings(max_examples=20, deadline=None)
@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_same_seed_same_metrics(scenario, seed):
    assert play(scenario, seed)[1] == play(scenario, seed)[1]


def test_partial_day_counts_add_up():
    """Mid-day: served + cancelled + open (incl. assigned and unreleased) = all bookings."""
    from rldispatch.scenarios.presets import make_preset

    env = DispatchEnv(preset=None, scenario=make_preset("geneva", 4))
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        _, _, terminated, _, info = env.step(rng.choice(np.flatnonzero(info["action_mask"])))
        counts = np.bincount(env.sim.status, minlength=5)
        assert counts[SERVED] + counts[CANCELLED] + counts[[UNRELEASED, OPEN, ASSIGNED]].sum() == (
            env.sim.n_bookings
        )
        if terminated:
            break
