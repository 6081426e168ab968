"""What inserting a booking into a driver's plan does to the bookings planned after it.

The plan after the insertion point is rescheduled exactly as the simulator does (each pickup
at the later of arrival and window opening) until the delay is absorbed: the planned
bookings it makes late, the delay of the next planned pickup, the delay summed over the rest
of the plan and the lateness it adds. The pairwise features and the service's score parts
read it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.sim.kernels import leg_km
from rldispatch.sim.simulator import DaySimulator


@njit(cache=True)
def knock_on_effects(
    pair_driver,
    pair_booking,
    pair_pickup_min,
    pair_position,
    plan_flat,
    plan_offset,
    plan_start_flat,
    pickup_vec,
    dropoff_vec,
    minutes_per_km,
    earliest_min,
    requested_min,
    pickup_to_free_min,
    late_after_min,
    travel,
):  # pragma: no cover - compiled
    """For each pair: planned bookings its insertion makes late, the delay of the next
    planned pickup, the delay summed over the rest of the plan and the minutes of lateness
    it adds to the planned pickups (minutes).

    The plan after the insertion point is rescheduled exactly as the simulator does (each
    pickup at the later of arrival and window opening) until the delay is absorbed.
    """
    n = pair_driver.shape[0]
    made_late = np.zeros(n)
    next_delay = np.zeros(n)
    total_delay = np.zeros(n)
    late_added = np.zeros(n)
    for q in range(n):
        driver = pair_driver[q]
        booking = pair_booking[q]
        k = plan_offset[driver] + pair_position[q]
        end = plan_offset[driver + 1]
        time = pair_pickup_min[q] + pickup_to_free_min[booking]
        here = dropoff_vec[booking]
        first = True
        while k < end:
            following = plan_flat[k]
            _, pace_km = leg_km(here, pickup_vec[following], travel)
            start = max(time + pace_km * minutes_per_km[following], earliest_min[following])
            delay = start - plan_start_flat[k]
            if first:
                next_delay[q] = max(delay, 0.0)
                first = False
            if delay <= 1e-9:
                break
            total_delay[q] += delay
            limit = requested_min[following] + late_after_min
            if start > limit and plan_start_flat[k] <= limit:
                made_late[q] += 1.0
            late_added[q] += max(start - limit, 0.0) - max(plan_start_flat[k] - limit, 0.0)
            time = start + pickup_to_free_min[following]
            here = dropoff_vec[following]
            k += 1
    return made_late, next_delay, total_delay, late_added


def plan_knock_on(
    sim: DaySimulator,
    pair_driver: np.ndarray,
    pair_booking: np.ndarray,
    pair_pickup_min: np.ndarray,
    pair_position: np.ndarray,
    packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`knock_on_effects` of insertions into the simulator's plans: per pair, planned
    bookings made late, delay of the next planned pickup, total delay and lateness added
    (minutes). ``packed``: every driver's plan packed, ``(bookings, offsets (n_drivers + 1,),
    starts)``, if at hand (then nothing is repacked)."""
    pair_driver = np.asarray(pair_driver, dtype=np.int64)
    if packed is not None:
        plan_flat, plan_offset, plan_start = packed
        local_driver = pair_driver
    else:
        # The kernel reads the plans of the pairs' drivers only, packed.
        plan_drivers, local_driver = np.unique(pair_driver, return_inverse=True)
        plan_bookings = [np.asarray(sim.plans[d], dtype=np.int64) for d in plan_drivers]
        sizes = np.array([plan.size for plan in plan_bookings], dtype=np.int64)
        plan_offset = np.zeros(plan_drivers.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=plan_offset[1:])
        if plan_offset[-1]:
            plan_flat = np.concatenate(plan_bookings)
            plan_start = np.concatenate([sim.plan_start[d] for d in plan_drivers])
        else:
            plan_flat = np.zeros(0, dtype=np.int64)
            plan_start = np.zeros(0)
    return knock_on_effects(
        local_driver.astype(np.int64).reshape(-1),
        np.asarray(pair_booking, dtype=np.int64),
        np.asarray(pair_pickup_min, dtype=np.float64),
        np.asarray(pair_position, dtype=np.int64),
        plan_flat,
        plan_offset,
        plan_start,
        *knock_on_booking_state(sim),
        LATE_AFTER_REQUESTED_MIN,
        sim.travel.kernel_args,
    )


def knock_on_booking_state(sim: DaySimulator) -> tuple[np.ndarray, ...]:
    """What :func:`knock_on_effects` reads of the simulator's bookings, in its order:
    ``(pickup_vec, dropoff_vec, minutes_per_km, earliest_min, requested_min,
    pickup_to_free_min)``."""
    return (
        sim.pickup_vec,
        sim.dropoff_vec,
        sim.minutes_per_km,
        sim.earliest_min,
        sim.requested_min,
        sim.pickup_to_free_min,
    )
