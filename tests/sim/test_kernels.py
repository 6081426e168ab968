"""The compiled insertion kernel against a plain NumPy statement of the same rules."""

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.env import DispatchEnv
from rldispatch.policies import make_baseline
from rldispatch.sim.simulator import (
    DELAY_COST_KM_PER_MIN,
    FEASIBILITY_TOLERANCE_MIN,
    LATE_COST_KM_PER_MIN,
)


def reference_table(sim, candidates):
    """Every driver x position x candidate at once, with broadcasting."""
    width = sim._pos_valid.shape[1]
    valid = sim._pos_valid
    prev_min = sim._pos_prev_min.copy()
    prev_min[:, 0] = np.maximum(prev_min[:, 0], sim.now_min)
    has_next = sim._pos_has_next[:, :, None]
    following = sim._pos_next_booking
    to_pickup = sim.travel.distance_km(
        sim._pos_prev_vec[:, :, None, :], sim.pickup_vec[candidates][None, None]
    )
    start = np.maximum(
        prev_min[:, :, None] + to_pickup * sim.minutes_per_km[candidates],
        sim.earliest_min[candidates],
    )
    complete = start + sim.pickup_to_free_min[candidates]
    to_next = sim.travel.distance_km(
        sim.dropoff_vec[candidates][None, None], sim.pickup_vec[following][:, :, None, :]
    )
    next_start = np.maximum(
        complete + to_next * sim.minutes_per_km[following][:, :, None],
        sim.earliest_min[following][:, :, None],
    )
    delay = next_start - sim._pos_next_start[:, :, None]
    feasible = (
        valid[:, :, None]
        & (start <= sim.latest_min[candidates] + FEASIBILITY_TOLERANCE_MIN)
        & (sim.load[candidates][None, :] <= sim.capacity[:, None])[:, None, :]
        & np.where(
            has_next,
            delay <= sim._pos_next_slack[:, :, None] + FEASIBILITY_TOLERANCE_MIN,
            complete <= sim.shift_end_min[:, None, None] + FEASIBILITY_TOLERANCE_MIN,
        )
    )
    added = (
        to_pickup
        + sim.ride_km[candidates]
        + np.where(has_next, to_next - sim._pos_prev_next_km[:, :, None], 0.0)
    )
    late = np.maximum(start - sim.requested_min[candidates] - LATE_AFTER_REQUESTED_MIN, 0.0)
    cost = added + LATE_COST_KM_PER_MIN * late
    cost = cost + DELAY_COST_KM_PER_MIN * np.where(has_next, delay, 0.0)
    cost = np.where(feasible, cost, np.inf)
    assert cost.shape[1] == width
    best = cost.min(axis=1)
    return feasible.any(axis=1), best


def test_kernel_and_cache_agree_with_the_reference_through_a_day():
    env = DispatchEnv(preset="geneva")
    env.reset(options={"day_seed": 12})
    policy = make_baseline("random", seed=3)
    checked = 0
    terminated = False
    while not terminated:
        sim = env.sim
        candidates = sim.visible_bookings()
        if candidates.size:
            fresh = sim.insertion_table(candidates)
            cached = sim.best_insertions(candidates)
            feasible, cost = reference_table(sim, candidates)
            assert np.array_equal(fresh.feasible, feasible)
            assert np.array_equal(cached.feasible, feasible)
            assert np.allclose(fresh.cost[feasible], cost[feasible])
            assert np.allclose(cached.cost[feasible], cost[feasible])
            checked += 1
        _, _, terminated, _, _ = env.step(policy.act(env))
    assert checked > 50
