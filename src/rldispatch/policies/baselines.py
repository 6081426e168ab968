"""Baseline dispatchers: random, nearest free driver, cheapest insertion, batch matching, and
rolling-horizon re-optimisation (:mod:`rldispatch.policies.reopt`)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action
from rldispatch.policies.reopt import ReoptPolicy

INFEASIBLE_COST = 1e9


def _feasible_grid(env: DispatchEnv) -> np.ndarray:
    """``(drivers, visible)`` booleans: which assignments the mask allows."""
    slots = env.config.visible_slots
    grid = env.action_masks()[1:].reshape(env.config.max_drivers, slots)
    return grid[: env.sim.n_drivers, : env.visible.size]


def _urgency_order(env: DispatchEnv) -> np.ndarray:
    """Visible slots, urgent bookings first, then by the closing of their window."""
    visible = env.visible
    sim = env.sim
    return np.lexsort((sim.latest_min[visible], -sim.priority[visible]))


class RandomPolicy:
    """Uniform over the valid actions (wait included)."""

    name = "random"
    carries_state_across_days = True
    """Its generator runs on from one day to the next (see ``training.evaluation``)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, env: DispatchEnv) -> int:
        return int(self.rng.choice(np.flatnonzero(env.action_masks())))


class NearestDriverPolicy:
    """The dispatcher's rule of thumb: the most pressing booking goes to the closest free
    driver, free meaning nothing planned beyond the ride it may be on now; distance counts from
    where that ride ends. With no free driver that can serve it in time, wait."""

    name = "nearest"

    def act(self, env: DispatchEnv) -> int:
        sim = env.sim
        feasible = _feasible_grid(env) & sim.unplanned_drivers()[:, None]
        if not feasible.any():
            return 0
        for slot in _urgency_order(env):
            drivers = np.flatnonzero(feasible[:, slot])
            if drivers.size:
                booking = env.visible[slot]
                free_vec = sim.driver_free_vec()[drivers]
                distance = sim.travel.distance_km(free_vec, sim.pickup_vec[booking])
                return assignment_action(env, drivers[int(np.argmin(distance))], slot)
        return 0


class InsertionPolicy:
    """Cheapest feasible insertion into the drivers' plans, urgent bookings first."""

    name = "insertion"

    def act(self, env: DispatchEnv) -> int:
        feasible = _feasible_grid(env)
        if not feasible.any():
            return 0
        cost = env.table.cost
        for slot in _urgency_order(env):
            column = np.where(feasible[:, slot], cost[:, slot], np.inf)
            driver = int(np.argmin(column))
            if np.isfinite(column[driver]):
                return assignment_action(env, driver, slot)
        return 0


class MatchingPolicy:
    """Batch assignment: a minimum-cost matching of drivers to visible bookings (one booking
    per driver per round), computed on insertion costs; urgent bookings weigh more."""

    name = "matching"

    def __init__(self, urgent_weight: float = 0.5) -> None:
        self.urgent_weight = urgent_weight

    def act(self, env: DispatchEnv) -> int:
        feasible = _feasible_grid(env)
        if not feasible.any():
            return 0
        sim = env.sim
        visible = env.visible
        cost = np.where(feasible, env.table.cost, INFEASIBLE_COST)
        cost = cost * (1.0 - self.urgent_weight * sim.priority[visible])[None, :]
        rows, cols = linear_sum_assignment(cost)
        chosen = [(r, c) for r, c in zip(rows, cols, strict=True) if feasible[r, c]]
        if not chosen:
            return 0
        # Serve the pair whose booking's window closes first.
        driver, slot = min(chosen, key=lambda pair: sim.latest_min[visible[pair[1]]])
        return assignment_action(env, driver, slot)


BASELINES = {
    "random": RandomPolicy,
    "nearest": NearestDriverPolicy,
    "insertion": InsertionPolicy,
    "matching": MatchingPolicy,
    "reopt": ReoptPolicy,
}


def make_baseline(name: str, seed: int = 0):
    """A baseline policy by name."""
    if name not in BASELINES:
        raise ValueError(f"policy: unknown policy {name!r}; choose one of {sorted(BASELINES)}")
    if name in ("random", "reopt"):
        return BASELINES[name](seed=seed)
    return BASELINES[name]()
