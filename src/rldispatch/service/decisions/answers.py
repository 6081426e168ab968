"""What an answer says about a (driver, booking) pair of a live state: where the booking goes
in the driver's plan, when it is picked up, and the parts of its score."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.service.decisions.snapshot import LiveEnv
from rldispatch.sim.knock_on import plan_knock_on
from rldispatch.sim.simulator import Assignment
from rldispatch.sim.stop_simulator import StopDaySimulator


@dataclass(frozen=True)
class Candidate:
    """A driver that can serve the booking, with the parts of its score.

    :param q_value: the model's value of giving the booking to this driver (RL answers).
    :param insertion_cost: the heuristic's cost: km added, plus 2 km per minute late, plus
        0.1 km per minute the next planned pickup is pushed back.
    :param plan_index: where the booking's pickup goes in the driver's plan of stops.
    :param dropoff_plan_index: where its drop-off goes, in the plan with the pickup in (right
        after it unless rides are shared).
    :param pickup_in_min: the estimated pickup, in minutes from now.
    :param own_late_min: minutes the pickup is late (beyond 5 after the requested time).
    :param knock_on_late_min: minutes of lateness the insertion adds to the planned pickups.
    :param knock_on_made_late: planned pickups it makes late.
    :param cancellation_avoided: waiting now would cancel the booking (its window closes
        before the clock's next step).
    """

    driver_id: str
    q_value: float | None
    insertion_cost: float | None
    pickup_in_min: float | None
    added_km: float | None
    plan_index: int
    late: bool
    own_late_min: float
    knock_on_late_min: float
    knock_on_made_late: int
    cancellation_avoided: bool
    dropoff_plan_index: int = -1


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is not finite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def candidates(
    live: LiveEnv, drivers: np.ndarray, slot: int, q_values: np.ndarray | None = None
) -> tuple[Candidate, ...]:
    """The candidates ``drivers`` (feasible) for the booking in visible ``slot``, in order."""
    env = live.env
    sim = env.sim
    table = env.table
    drivers = np.asarray(drivers, dtype=np.int64)
    if drivers.size == 0:
        return ()
    booking = int(env.visible[slot])
    pickup = table.pickup_min[drivers, slot]
    position = table.position[drivers, slot]
    if isinstance(sim, StopDaySimulator):
        dropoff = table.dropoff_position[drivers, slot]
        effects = [
            sim.insertion_knock_on(int(d), booking, int(p), int(q))
            for d, p, q in zip(drivers, position, dropoff, strict=True)
        ]
        made_late = np.array([made for made, _ in effects], dtype=np.int64)
        late_added = np.array([added for _, added in effects])
    else:
        dropoff = np.full(drivers.size, -1)
        made_late, _, _, late_added = plan_knock_on(
            sim, drivers, np.full(drivers.size, booking), pickup, position
        )
    own_late = np.maximum(pickup - sim.requested_min[booking] - LATE_AFTER_REQUESTED_MIN, 0.0)
    clock_step = max(sim.next_event_min(), sim.now_min + sim.min_advance_min)
    waiting_cancels = bool(sim.latest_min[booking] < clock_step)
    # Each column read once as Python numbers (the same values ``float(array[k])`` gives).
    values = [None] * drivers.size if q_values is None else np.asarray(q_values).tolist()
    columns = zip(
        drivers.tolist(),
        values,
        table.cost[drivers, slot].tolist(),
        (pickup - sim.now_min).tolist(),
        table.added_km[drivers, slot].tolist(),
        position.tolist(),
        np.asarray(dropoff).tolist(),
        own_late.tolist(),
        np.asarray(late_added, dtype=np.float64).tolist(),
        np.asarray(made_late).tolist(),
        strict=True,
    )
    return tuple(
        Candidate(
            driver_id=live.driver_ids[driver],
            q_value=None if q_value is None else float(q_value),
            insertion_cost=finite_or_none(cost),
            pickup_in_min=finite_or_none(pickup_in),
            added_km=finite_or_none(added),
            plan_index=live.plan_index(driver, int(at)),
            dropoff_plan_index=live.dropoff_plan_index(driver, int(at), int(dropoff_at)),
            late=own > 0.0,
            own_late_min=float(own),
            knock_on_late_min=float(added_late),
            knock_on_made_late=int(made),
            cancellation_avoided=waiting_cancels,
        )
        for (
            driver,
            q_value,
            cost,
            pickup_in,
            added,
            at,
            dropoff_at,
            own,
            added_late,
            made,
        ) in columns
    )


@dataclass(frozen=True)
class RoundAssignment:
    """One assignment of a dispatch round, in the order the policy made them: the plan index
    is in the driver's plan as the round's earlier assignments left it."""

    booking_id: str
    driver_id: str
    plan_index: int
    pickup_in_min: float
    late: bool
    added_km: float
    dropoff_plan_index: int = -1


def round_assignment(live: LiveEnv, assignment: Assignment) -> RoundAssignment:
    sim = live.env.sim
    return RoundAssignment(
        booking_id=live.booking_ids[assignment.booking],
        driver_id=live.driver_ids[assignment.driver],
        plan_index=live.plan_index(assignment.driver, assignment.position),
        pickup_in_min=assignment.pickup_min - sim.now_min,
        late=assignment.late,
        added_km=assignment.added_km,
        dropoff_plan_index=live.dropoff_plan_index(
            assignment.driver, assignment.position, assignment.dropoff_position
        ),
    )
