"""Acting on a plan through the env's own actions.

A plan says which driver each booking goes to and when it is picked up. At a decision, of the
visible bookings the plan gives to a driver (and the action mask allows), the one with the
earliest planned pickup goes to that driver (the env inserts it at its cheapest place in the
driver's plan); when the plan gives none of them, the plan waits. The rolling re-optimiser
(:mod:`rldispatch.policies.reopt`) acts on its re-plans this way, and the hindsight plan of a
day (:class:`PlanFollower`) can be played the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action
from rldispatch.policies.hindsight_result import HindsightResult


def planned_choice(
    env: DispatchEnv, driver_of: Mapping[int, int], pickup_of: Mapping[int, float]
) -> tuple[int, int] | None:
    """``(driver, visible slot)`` the plan assigns now, or None when it waits.

    :param driver_of: booking index -> driver index of the plan.
    :param pickup_of: booking index -> planned pickup minute (for every booking of
        ``driver_of``).
    """
    grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
    best, best_min = None, np.inf
    for slot, booking in enumerate(env.visible.tolist()):
        driver = driver_of.get(booking)
        if driver is None or not grid[driver, slot]:
            continue
        if pickup_of[booking] < best_min:
            best, best_min = (driver, slot), pickup_of[booking]
    return best


def planned_action(
    env: DispatchEnv, driver_of: Mapping[int, int], pickup_of: Mapping[int, float]
) -> int | None:
    """The env action of :func:`planned_choice`, or None when the plan waits."""
    choice = planned_choice(env, driver_of, pickup_of)
    return None if choice is None else assignment_action(env, *choice)


@dataclass(frozen=True)
class DayPlan:
    """A full day's plan by booking and driver index: ``driver_of[booking]`` and
    ``pickup_of[booking]`` for every booking it serves (bookings it drops are absent)."""

    driver_of: dict[int, int]
    pickup_of: dict[int, float]

    @classmethod
    def from_hindsight(cls, result: HindsightResult, booking_ids: list[str]) -> DayPlan:
        """The plan of a hindsight solution; ``booking_ids`` are the scenario's bookings' ids
        in scenario order."""
        index = {booking_id: k for k, booking_id in enumerate(booking_ids)}
        driver_of, pickup_of = {}, {}
        for driver, stops in enumerate(result.routes):
            for stop in stops:
                if stop.kind == "pickup":
                    booking = index[stop.booking]
                    driver_of[booking] = driver
                    pickup_of[booking] = float(stop.time_min)
        return cls(driver_of, pickup_of)


class PlanFollower:
    """Plays a fixed :class:`DayPlan` through the env's actions (:func:`planned_action`);
    waits when the plan assigns nothing now."""

    name = "plan"

    def __init__(self, plan: DayPlan) -> None:
        self.plan = plan

    def act(self, env: DispatchEnv) -> int:
        action = planned_action(env, self.plan.driver_of, self.plan.pickup_of)
        return 0 if action is None else action
