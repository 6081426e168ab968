"""Compiled inner loops of the simulator (Numba).

Both functions work on the embedded points of :class:`rldispatch.sim.travel.TravelModel`:
``great_circle`` selects ``scale_km * asin(|u - v| / 2)`` (latitude/longitude on the unit
sphere, ``scale_km = 2 R detour``) over the plain Euclidean ``|u - v|``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _distance_km(
    a: np.ndarray, b: np.ndarray, great_circle: bool, scale_km: float
) -> float:  # pragma: no cover - compiled
    total = 0.0
    for k in range(a.shape[0]):
        diff = a[k] - b[k]
        total += diff * diff
    chord = math.sqrt(total)
    if great_circle:
        return scale_km * math.asin(min(chord * 0.5, 1.0))
    return chord


@njit(cache=True)
def best_insertions(
    rows,
    candidates,
    now_min,
    pos_valid,
    pos_prev_min,
    pos_prev_vec,
    pos_has_next,
    pos_next_booking,
    pos_next_start,
    pos_next_slack,
    pos_prev_next_km,
    pickup_vec,
    dropoff_vec,
    minutes_per_km,
    earliest_min,
    latest_min,
    requested_min,
    pickup_to_free_min,
    ride_km,
    load,
    capacity,
    shift_end_min,
    great_circle,
    scale_km,
    late_after_min,
    late_cost,
    delay_cost,
    tolerance,
):  # pragma: no cover - compiled
    """Cheapest feasible insertion position of each candidate in each row's plan."""
    n_rows = rows.shape[0]
    n_candidates = candidates.shape[0]
    feasible = np.zeros((n_rows, n_candidates), dtype=np.bool_)
    cost = np.full((n_rows, n_candidates), np.inf)
    added_km = np.zeros((n_rows, n_candidates))
    pickup_min = np.zeros((n_rows, n_candidates))
    position = np.zeros((n_rows, n_candidates), dtype=np.int64)
    width = pos_valid.shape[1]
    for r in range(n_rows):
        driver = rows[r]
        for c in range(n_candidates):
            booking = candidates[c]
            if load[booking] > capacity[driver]:
                continue
            for p in range(width):
                if not pos_valid[driver, p]:
                    break
                prev_min = pos_prev_min[driver, p]
                if p == 0 and prev_min < now_min:
                    prev_min = now_min
                to_pickup = _distance_km(
                    pos_prev_vec[driver, p], pickup_vec[booking], great_circle, scale_km
                )
                start = max(
                    prev_min + to_pickup * minutes_per_km[booking], earliest_min[booking]
                )
                if start > latest_min[booking] + tolerance:
                    continue
                complete = start + pickup_to_free_min[booking]
                km = to_pickup + ride_km[booking]
                delay = 0.0
                if pos_has_next[driver, p]:
                    following = pos_next_booking[driver, p]
                    to_next = _distance_km(
                        dropoff_vec[booking], pickup_vec[following], great_circle, scale_km
                    )
                    next_start = max(
                        complete + to_next * minutes_per_km[following], earliest_min[following]
                    )
                    delay = next_start - pos_next_start[driver, p]
                    if delay > pos_next_slack[driver, p] + tolerance:
                        continue
                    km += to_next - pos_prev_next_km[driver, p]
                elif complete > shift_end_min[driver] + tolerance:
                    continue
                late_min = max(start - requested_min[booking] - late_after_min, 0.0)
                value = km + late_cost * late_min + delay_cost * delay
                if value < cost[r, c]:
                    cost[r, c] = value
                    feasible[r, c] = True
                    added_km[r, c] = km
                    pickup_min[r, c] = start
                    position[r, c] = p
    return feasible, cost, added_km, pickup_min, position


@njit(cache=True)
def schedule_plan(
    plan,
    start_min,
    start_vec,
    pickup_vec,
    dropoff_vec,
    minutes_per_km,
    earliest_min,
    latest_min,
    pickup_to_free_min,
    shift_end_min,
    great_circle,
    scale_km,
):  # pragma: no cover - compiled
    """Pickup starts, completion times, legs (min and km) and slack of a driver's plan.

    The slack of a booking is how much later its pickup could start without breaking a
    later window or the end of the shift.
    """
    size = plan.shape[0]
    start = np.empty(size)
    complete = np.empty(size)
    leg_min = np.empty(size)
    leg_km = np.empty(size)
    slack = np.empty(size)
    time = start_min
    here = start_vec
    for k in range(size):
        booking = plan[k]
        leg_km[k] = _distance_km(here, pickup_vec[booking], great_circle, scale_km)
        leg_min[k] = leg_km[k] * minutes_per_km[booking]
        start[k] = max(time + leg_min[k], earliest_min[booking])
        complete[k] = start[k] + pickup_to_free_min[booking]
        time = complete[k]
        here = dropoff_vec[booking]
    if size:
        slack[size - 1] = min(latest_min[plan[size - 1]] - start[size - 1], shift_end_min - time)
        for k in range(size - 2, -1, -1):
            wait_next = start[k + 1] - (complete[k] + leg_min[k + 1])
            slack[k] = min(latest_min[plan[k]] - start[k], wait_next + slack[k + 1])
    return start, complete, leg_min, leg_km, slack
