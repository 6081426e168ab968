"""A simulator's copy plays on alone, and a copy that forgets the unreleased bookings knows
only what a dispatcher knows now."""

from __future__ import annotations

import numpy as np

from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.sim.simulator import ASSIGNED, CANCELLED, OPEN, SERVED, UNRELEASED
from rldispatch.sim.state import restore_day

DAY = geneva_day(2_000_500, 5)


def env_after(decisions: int) -> DispatchEnv:
    """An env on DAY after ``decisions`` decisions of the insertion heuristic."""
    env = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=5))
    env.reset()
    policy = make_baseline("insertion")
    for _ in range(decisions):
        env.step(policy.act(env))
    return env


def play_out(env: DispatchEnv) -> dict:
    policy = make_baseline("insertion")
    terminated = env.sim.done
    while not terminated:
        _, _, terminated, _, _ = env.step(policy.act(env))
    return env.metrics().as_dict()


def test_a_copy_plays_on_without_touching_the_original_and_ends_as_it_would():
    env = env_after(40)
    sim = env.sim
    status, plans, now = sim.status.copy(), [list(p) for p in sim.plans], sim.now_min
    copy = sim.copy()
    assert copy.scenario is sim.scenario and copy.pickup_xy is sim.pickup_xy
    assert copy.status is not sim.status and copy.plans is not sim.plans

    other = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=5))
    other.resume(copy)
    copied_end = play_out(other)
    assert np.array_equal(sim.status, status)
    assert [list(p) for p in sim.plans] == plans and sim.now_min == now

    original_end = play_out(env)
    for name in ("completion_rate", "late_pickup_rate", "cancelled", "distance_km", "served"):
        assert copied_end[name] == original_end[name], name


def test_forgetting_the_unreleased_bookings_leaves_what_is_known_now():
    env = env_after(10)
    sim = env.sim
    unreleased = np.flatnonzero(sim.status == UNRELEASED)
    assert unreleased.size > 0
    visible = sim.visible_bookings().copy()
    known = sim.copy()
    known.forget_unreleased()
    assert not (known.status == UNRELEASED).any()
    assert (known.status[unreleased] == CANCELLED).all()
    assert np.array_equal(known.visible_bookings(), visible)
    assert (sim.status[unreleased] == UNRELEASED).all()

    other = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=5))
    other.resume(known)
    play_out(other)
    # Every booking the copy served was known when it forgot the rest.
    assert not np.isin(np.flatnonzero(known.assigned_driver >= 0), unreleased).any()


def test_a_copy_of_a_day_restored_for_its_first_bookings_offers_every_booking_once_widened():
    offered = 4
    n_drivers = len(DAY.drivers)
    restored = restore_day(
        DAY,
        0.0,
        free_min=np.zeros(n_drivers),
        plans=[[] for _ in range(n_drivers)],
        rides=np.zeros(n_drivers, dtype=np.int64),
        offered_bookings=offered,
    )
    copy = restored.copy()
    copy.offer_every_booking()
    assert copy._best_cost.shape == (n_drivers, len(DAY.bookings))
    assert restored._best_cost.shape == (n_drivers, offered)  # the original keeps its own
    env = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=5))
    env.resume(copy)
    play_out(env)
    later = copy.status[offered:]
    assert np.isin(later, (ASSIGNED, SERVED)).sum() > len(later) // 2
    assert not (later == OPEN).any()
