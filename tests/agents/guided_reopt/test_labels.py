"""A full-information plan read as the decisions open at a state."""

from __future__ import annotations

import numpy as np

from rldispatch.agents.guided_reopt.labels import (
    LabelBudget,
    Labeller,
    LabelRequest,
    StateLabel,
    map_plan,
)
from rldispatch.domain import Booking, Driver, Scenario, TravelConfig
from rldispatch.policies.reopt import state_problem
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import OPEN, UNRELEASED, DaySimulator


def booking(index: int, release_min: float, requested_min: float) -> Booking:
    return Booking(
        id=f"b{index}",
        release_min=release_min,
        pickup=(float(index), 0.0),
        dropoff=(float(index), 1.0),
        requested_min=requested_min,
        window=(max(0.0, requested_min - 10.0), requested_min + 30.0),
        service_min=1.0,
    )


def hand_made_day() -> Scenario:
    """b0, b1, b3 known at the start; b2 released at minute 20; b4 known, far ahead."""
    return Scenario(
        name="hand-made",
        coords="xy",
        horizon_min=600.0,
        drivers=(
            Driver(id="d1", start=(0.0, 0.0), shift=(0.0, 600.0)),
            Driver(id="d2", start=(5.0, 0.0), shift=(0.0, 600.0)),
        ),
        bookings=(
            booking(0, 0.0, 20.0),
            booking(1, 0.0, 60.0),
            booking(2, 20.0, 40.0),
            booking(3, 0.0, 30.0),
            booking(4, 0.0, 400.0),
        ),
        travel=TravelConfig(speed_kmh=60.0),
    )


def test_a_plan_maps_to_now_later_and_never() -> None:
    sim = DaySimulator(hand_made_day())
    sim.reset()
    assert sim.status.tolist() == [OPEN, OPEN, UNRELEASED, OPEN, OPEN]
    problem = state_problem(sim, horizon_min=120.0)
    assert problem.bookings.tolist() == [0, 1, 3]  # b4 opens beyond the horizon
    # d1 serves b0, then b2 (unknown now), then b1: b0 now, b1 later, and its re-plan should
    # end with b1. d2 serves b4 (not a decision of this state) and nothing else: b3 is never
    # served, and d2's re-plan should be empty.
    routes = [[0, 2, 1], [4]]
    label = map_plan(sim, problem.bookings, set(), routes)
    assert label == StateLabel(now=(0,), later=(1,), driver_of={0: 0, 1: 0}, end_booking=(1, -1))


def test_committed_bookings_end_a_plan_but_are_no_decision() -> None:
    sim = DaySimulator(hand_made_day())
    sim.reset()
    label = map_plan(sim, np.array([0, 1, 3]), {3}, [[0, 1], [3]])
    assert label.now == (0, 1)
    assert label.end_booking == (1, 3)


def test_labels_come_back_from_the_disk_cache(tmp_path) -> None:
    sim = DaySimulator(hand_made_day())
    sim.reset()
    problem = state_problem(sim, horizon_min=120.0)
    request = LabelRequest(sim, problem.bookings, [[0], [3]])
    budget = LabelBudget(solution_limit=5, time_limit_s=2.0)
    first = Labeller(RewardConfig(), budget, cache_dir=tmp_path)
    label = first.label([request])[0]
    assert first.solved == 1 and len(list(tmp_path.glob("*.json"))) == 1
    again = Labeller(RewardConfig(), budget, cache_dir=tmp_path)
    assert again.label([request]) == [label]
    assert again.solved == 0 and again.cached == 1
    # Every known booking fits: the full-information plan serves all of them now.
    assert set(label.now) == {0, 1, 3}
