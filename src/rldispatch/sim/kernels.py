"""Compiled inner loops of the simulator (Numba).

They work on the embedded points of :class:`rldispatch.sim.travel.TravelModel` and take its
``kernel_args``, ``travel = (great_circle, scale_km, road_km, road_pace_km)``: on the formula
(empty road tables) ``great_circle`` selects ``scale_km * asin(|u - v| / 2)`` (latitude/longitude
on the unit sphere, ``scale_km = 2 R detour``) over the plain Euclidean ``|u - v|``; on a road
network a point's first component is its place's row in the road tables. They release the GIL
(``nogil``): a server's other threads, its event loop among them, run while one fills a large
day's table.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def distance_km(
    a: np.ndarray, b: np.ndarray, great_circle: bool, scale_km: float
) -> float:  # pragma: no cover - compiled
    """Km between two points of the travel frame: the chord for xy points; for points on the
    unit sphere, ``scale_km`` times the half-arc (see ``rldispatch.sim.travel.TravelModel``)."""
    total = 0.0
    for k in range(a.shape[0]):
        diff = a[k] - b[k]
        total += diff * diff
    chord = math.sqrt(total)
    if great_circle:
        return scale_km * math.asin(min(chord * 0.5, 1.0))
    return chord


@njit(cache=True, inline="always")
def leg_km(a: np.ndarray, b: np.ndarray, travel) -> tuple[float, float]:  # pragma: no cover
    """(km, pace km) of the leg between two embedded points: its time is the pace km times
    the minutes per km of the booking it leads to (see ``rldispatch.sim.travel``)."""
    great_circle, scale_km, road_km, road_pace_km = travel
    if road_km.shape[0] > 0:
        i = int(a[0])
        j = int(b[0])
        if i >= 0 and j >= 0:
            return np.float64(road_km[i, j]), np.float64(road_pace_km[i, j])
        total = 0.0
        for k in range(1, a.shape[0]):
            diff = a[k] - b[k]
            total += diff * diff
        km = scale_km * math.asin(min(math.sqrt(total) * 0.5, 1.0))
        return km, km
    km = distance_km(a, b, great_circle, scale_km)
    return km, km


@njit(cache=True, inline="always")
def _best_position(
    driver,
    booking,
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
    fits,
    shift_end_min,
    travel,
    late_after_min,
    late_cost,
    delay_cost,
    tolerance,
):  # pragma: no cover - compiled
    """(cost, added km, pickup start, position) of the cheapest feasible insertion of one
    booking into one driver's plan; cost is ``inf`` when none is feasible."""
    best_cost = np.inf
    best_km = 0.0
    best_pickup = 0.0
    best_position = 0
    if not fits[driver, booking]:
        return best_cost, best_km, best_pickup, best_position
    for p in range(pos_valid.shape[1]):
        if not pos_valid[driver, p]:
            break
        prev_min = pos_prev_min[driver, p]
        if p == 0 and prev_min < now_min:
            prev_min = now_min
        to_pickup, to_pickup_pace = leg_km(pos_prev_vec[driver, p], pickup_vec[booking], travel)
        start = max(prev_min + to_pickup_pace * minutes_per_km[booking], earliest_min[booking])
        if start > latest_min[booking] + tolerance:
            continue
        complete = start + pickup_to_free_min[booking]
        km = to_pickup + ride_km[booking]
        delay = 0.0
        if pos_has_next[driver, p]:
            following = pos_next_booking[driver, p]
            to_next, to_next_pace = leg_km(dropoff_vec[booking], pickup_vec[following], travel)
            next_start = max(
                complete + to_next_pace * minutes_per_km[following], earliest_min[following]
            )
            delay = next_start - pos_next_start[driver, p]
            if delay > pos_next_slack[driver, p] + tolerance:
                continue
            km += to_next - pos_prev_next_km[driver, p]
        elif complete > shift_end_min[driver] + tolerance:
            continue
        late_min = max(start - requested_min[booking] - late_after_min, 0.0)
        value = km + late_cost * late_min + delay_cost * delay
        if value < best_cost:
            best_cost = value
            best_km = km
            best_pickup = start
            best_position = p
    return best_cost, best_km, best_pickup, best_position


@njit(cache=True, nogil=True)
def fill_best_insertions(
    candidates,
    now_min,
    plan_state,
    booking_state,
    fits,
    shift_end_min,
    travel,
    rules,
    best_valid,
    best_cost,
    best_added_km,
    best_pickup_min,
    best_position,
):  # pragma: no cover - compiled
    """Fill the cache entries ``(driver, candidate)`` that are not valid, in place.

    ``plan_state`` and ``booking_state`` are the tuples of position and booking arrays that
    :func:`_best_position` takes; ``fits`` is ``(drivers, bookings)``: the vehicle has a place
    of every kind the booking needs; ``rules`` is (late after, late cost, delay cost, tolerance).
    """
    (
        pos_valid,
        pos_prev_min,
        pos_prev_vec,
        pos_has_next,
        pos_next_booking,
        pos_next_start,
        pos_next_slack,
        pos_prev_next_km,
    ) = plan_state
    (
        pickup_vec,
        dropoff_vec,
        minutes_per_km,
        earliest_min,
        latest_min,
        requested_min,
        pickup_to_free_min,
        ride_km,
    ) = booking_state
    late_after_min, late_cost, delay_cost, tolerance = rules
    for driver in range(best_valid.shape[0]):
        for c in range(candidates.shape[0]):
            booking = candidates[c]
            if best_valid[driver, booking]:
                continue
            cost, km, pickup, position = _best_position(
                driver,
                booking,
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
                fits,
                shift_end_min,
                travel,
                late_after_min,
                late_cost,
                delay_cost,
                tolerance,
            )
            best_cost[driver, booking] = cost
            best_added_km[driver, booking] = km
            best_pickup_min[driver, booking] = pickup
            best_position[driver, booking] = position
            best_valid[driver, booking] = True


@njit(cache=True, nogil=True)
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
    travel,
):  # pragma: no cover - compiled
    """Pickup starts, completion times, legs (min and km) and slack of a driver's plan.

    The slack of a booking is how much later its pickup could start without breaking a
    later window or the end of the shift.
    """
    size = plan.shape[0]
    start = np.empty(size)
    complete = np.empty(size)
    leg_min = np.empty(size)
    legs_km = np.empty(size)
    slack = np.empty(size)
    time = start_min
    here = start_vec
    for k in range(size):
        booking = plan[k]
        km, pace_km = leg_km(here, pickup_vec[booking], travel)
        legs_km[k] = km
        leg_min[k] = pace_km * minutes_per_km[booking]
        start[k] = max(time + leg_min[k], earliest_min[booking])
        complete[k] = start[k] + pickup_to_free_min[booking]
        time = complete[k]
        here = dropoff_vec[booking]
    if size:
        slack[size - 1] = min(latest_min[plan[size - 1]] - start[size - 1], shift_end_min - time)
        for k in range(size - 2, -1, -1):
            wait_next = start[k + 1] - (complete[k] + leg_min[k + 1])
            slack[k] = min(latest_min[plan[k]] - start[k], wait_next + slack[k + 1])
    return start, complete, leg_min, legs_km, slack


@njit(cache=True, nogil=True)
def write_positions(
    driver,
    plan,
    anchor_min,
    anchor_vec,
    dropoff_vec,
    start,
    complete,
    legs_km,
    slack,
    plan_state,
):  # pragma: no cover - compiled
    """Write one driver's insertion positions (before each planned booking, and at the end)."""
    (
        pos_valid,
        pos_prev_min,
        pos_prev_vec,
        pos_has_next,
        pos_next_booking,
        pos_next_start,
        pos_next_slack,
        pos_prev_next_km,
    ) = plan_state
    size = plan.shape[0]
    for p in range(pos_valid.shape[1]):
        pos_valid[driver, p] = p <= size
        pos_has_next[driver, p] = p < size
    pos_prev_min[driver, 0] = anchor_min
    pos_prev_vec[driver, 0] = anchor_vec
    for k in range(size):
        pos_prev_min[driver, k + 1] = complete[k]
        pos_prev_vec[driver, k + 1] = dropoff_vec[plan[k]]
        pos_next_booking[driver, k] = plan[k]
        pos_next_start[driver, k] = start[k]
        pos_next_slack[driver, k] = slack[k]
        pos_prev_next_km[driver, k] = legs_km[k]


@njit(cache=True, nogil=True)
def visible_bookings(status, earliest_min, latest_min, open_status, until_min):  # pragma: no cover
    """Open bookings whose window opens by ``until_min``, by closing time then index."""
    count = 0
    for booking in range(status.shape[0]):
        if status[booking] == open_status and earliest_min[booking] <= until_min:
            count += 1
    indices = np.empty(count, dtype=np.int64)
    count = 0
    for booking in range(status.shape[0]):
        if status[booking] == open_status and earliest_min[booking] <= until_min:
            indices[count] = booking
            count += 1
    order = np.argsort(latest_min[indices], kind="mergesort")
    return indices[order]


@njit(cache=True, nogil=True)
def next_event_min(
    now_min,
    status,
    release_min,
    earliest_min,
    latest_min,
    lookahead_min,
    plan_end_min,
    shift_start_min,
    unreleased_status,
    open_status,
):  # pragma: no cover - compiled
    """The next release, window opening into view, window closing, driver becoming free or
    shift starting after ``now_min``; ``inf`` when nothing is left to happen."""
    best = np.inf
    any_open = False
    for booking in range(status.shape[0]):
        state = status[booking]
        if state == unreleased_status:
            best = min(best, release_min[booking])
        elif state == open_status:
            any_open = True
            best = min(best, latest_min[booking])
            appear = earliest_min[booking] - lookahead_min
            if appear > now_min:
                best = min(best, appear)
    if any_open:
        for driver in range(plan_end_min.shape[0]):
            if plan_end_min[driver] > now_min:
                best = min(best, plan_end_min[driver])
            if shift_start_min[driver] > now_min:
                best = min(best, shift_start_min[driver])
    return best


@njit(cache=True, nogil=True)
def release_and_cancel(
    status, release_min, latest_min, at_min, unreleased_status, open_status, cancelled_status
):  # pragma: no cover - compiled
    """Open the bookings released by ``at_min``, cancel open ones whose window closed before
    it; return how many were cancelled."""
    cancelled = 0
    for booking in range(status.shape[0]):
        if status[booking] == unreleased_status and release_min[booking] <= at_min:
            status[booking] = open_status
        if status[booking] == open_status and latest_min[booking] < at_min:
            status[booking] = cancelled_status
            cancelled += 1
    return cancelled


@njit(cache=True, nogil=True)
def fill_observation(
    observation,
    max_drivers,
    driver_start_frame,
    dropoff_frame,
    pickup_frame,
    plan_end_booking,
    plan_end_min,
    rides,
    now_min,
    visible,
    latest_min,
    priority,
    horizon_min,
    visible_share,
):  # pragma: no cover - compiled
    """Write the flat observation documented in ``DispatchEnv`` into a zeroed array."""
    for driver in range(plan_end_booking.shape[0]):
        base = 4 * driver
        booking = plan_end_booking[driver]
        if booking >= 0:
            observation[base] = dropoff_frame[booking, 0]
            observation[base + 1] = dropoff_frame[booking, 1]
        else:
            observation[base] = driver_start_frame[driver, 0]
            observation[base + 1] = driver_start_frame[driver, 1]
        observation[base + 2] = max(plan_end_min[driver] - now_min, 0.0) / 60.0
        observation[base + 3] = rides[driver] * 0.1
    offset = 4 * max_drivers
    for slot in range(visible.shape[0]):
        booking = visible[slot]
        base = offset + 4 * slot
        observation[base] = pickup_frame[booking, 0]
        observation[base + 1] = pickup_frame[booking, 1]
        observation[base + 2] = max(latest_min[booking] - now_min, 0.0) / 60.0
        observation[base + 3] = priority[booking]
    size = observation.shape[0]
    observation[size - 2] = now_min / horizon_min
    observation[size - 1] = visible_share
