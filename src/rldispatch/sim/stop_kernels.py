"""Compiled inner loops of plans of stops (Numba): scheduling a driver's stops and finding the
cheapest pickup and drop-off positions of a booking in it.

A stop is a pickup or a drop-off of a booking, or a break; ``kinds`` holds
:data:`PICKUP`, :data:`DROPOFF` or :data:`BREAK` and ``refs`` the booking (or the driver's break
index). A driver leaves its position at the earliest at ``start_min``; at a pickup it waits for
the window to open; a break starts no earlier than its ``earliest`` and, like every stop, as
soon as it can. A schedule is feasible when every pickup starts by the close of its window,
every break by its ``latest`` with nobody on board, every passenger's ride (end of the pickup
to the start of the drop-off) within its maximum, the places of each kind on board within the
vehicle's at every stop, at most ``max_bookings_on_board`` bookings on board, and the last stop
done by the end of the shift.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rldispatch.sim.kernels import leg_km

PICKUP, DROPOFF, BREAK = 0, 1, 2
COST_TIE = 1e-9
"""Insertion costs closer than this are a tie, which the earliest positions win: the same
choice whether times are counted from the start of the day or from now (a live request)."""


@njit(cache=True, nogil=True)
def schedule_stops(
    kinds,
    refs,
    size,
    start_min,
    start_vec,
    onboard,
    onboard_bookings,
    capacity,
    max_bookings_on_board,
    booking_arrays,
    picked_done_min,
    break_earliest,
    break_latest,
    break_duration,
    shift_end_min,
    travel,
    tolerance,
    start_out,
    leg_min_out,
    leg_km_out,
):  # pragma: no cover - compiled
    """Schedule the first ``size`` stops; write each stop's start, leg minutes and leg km and
    return (feasible, km of the legs, when the last stop is done).

    ``onboard`` holds the places by kind taken before the first stop and ``onboard_bookings``
    how many bookings that is; ``picked_done_min`` when each booking on board finished its
    pickup. ``booking_arrays`` is (pickup_vec, dropoff_vec, minutes_per_km, earliest_min,
    latest_min, service_min, load_by_kind, max_ride_min).
    """
    (
        pickup_vec,
        dropoff_vec,
        minutes_per_km,
        earliest_min,
        latest_min,
        service_min,
        load_by_kind,
        max_ride_min,
    ) = booking_arrays
    n_kinds = onboard.shape[0]
    load = onboard.copy()
    count = onboard_bookings
    time = start_min
    here = start_vec
    total_km = 0.0
    feasible = True
    for k in range(size):
        kind = kinds[k]
        ref = refs[k]
        if kind == BREAK:
            leg_km_out[k] = 0.0
            leg_min_out[k] = 0.0
            start = max(time, break_earliest[ref])
            if start > break_latest[ref] + tolerance or count > 0:
                feasible = False
                break
            start_out[k] = start
            time = start + break_duration[ref]
            continue
        target = pickup_vec[ref] if kind == PICKUP else dropoff_vec[ref]
        leg, pace_km = leg_km(here, target, travel)
        leg_km_out[k] = leg
        leg_min_out[k] = pace_km * minutes_per_km[ref]
        total_km += leg
        arrive = time + leg_min_out[k]
        if kind == PICKUP:
            start = max(arrive, earliest_min[ref])
            if start > latest_min[ref] + tolerance:
                feasible = False
                break
            count += 1
            over = count > max_bookings_on_board
            for c in range(n_kinds):
                load[c] += load_by_kind[ref, c]
                if load[c] > capacity[c]:
                    over = True
            if over:
                feasible = False
                break
        else:
            start = arrive
            picked = picked_done_min[ref]
            for m in range(k - 1, -1, -1):
                if kinds[m] == PICKUP and refs[m] == ref:
                    picked = start_out[m] + service_min[ref]
                    break
            if start - picked > max_ride_min[ref] + tolerance:
                feasible = False
                break
            count -= 1
            for c in range(n_kinds):
                load[c] -= load_by_kind[ref, c]
        start_out[k] = start
        time = start + service_min[ref]
        here = target
    if feasible and size > 0 and time > shift_end_min + tolerance:
        feasible = False
    return feasible, total_km, time


@njit(cache=True, nogil=True)
def plan_with_insertion(
    kinds, refs, size, booking, p, d, new_kinds, new_refs, origin
):  # pragma: no cover - compiled
    """Write into ``new_kinds``/``new_refs`` a driver's ``size`` stops with ``booking``'s
    pickup at position ``p`` and its drop-off at ``d`` (``p < d``); ``origin`` holds each new
    stop's index in the old plan, ``-1`` for the two inserted."""
    old = 0
    for k in range(size + 2):
        if k == p:
            new_kinds[k] = PICKUP
            new_refs[k] = booking
            origin[k] = -1
        elif k == d:
            new_kinds[k] = DROPOFF
            new_refs[k] = booking
            origin[k] = -1
        else:
            new_kinds[k] = kinds[old]
            new_refs[k] = refs[old]
            origin[k] = old
            old += 1


@njit(cache=True, nogil=True)
def fill_stop_insertions(
    candidates,
    now_min,
    plan_state,
    booking_arrays,
    booking_rules,
    fits,
    capacity,
    max_bookings_on_board,
    picked_done_min,
    break_state,
    shift_end_min,
    travel,
    rules,
    best_valid,
    best_cost,
    best_added_km,
    best_pickup_min,
    best_position,
    best_dropoff_position,
):  # pragma: no cover - compiled
    """Fill the cache entries ``(driver, candidate)`` that are not valid, in place: the
    cheapest feasible (pickup position, drop-off position) of each candidate in each
    driver's stops, ``best_dropoff_position`` counted in the plan after the pickup went in.

    ``plan_state`` is (kinds, refs, sizes, starts, anchor_min, anchor_vec, onboard,
    onboard_bookings, plan_km) per driver; ``booking_rules`` is (requested_min,); ``rules`` is
    (late after, late cost, delay cost, tolerance). The cost is the added km, plus the late
    cost per minute the pickup is late, plus the delay cost per minute the insertion pushes
    the stops already planned back (the largest push). Of costs within :data:`COST_TIE`
    of each other the first found (earliest pickup, then drop-off, position) is kept.
    """
    kinds, refs, sizes, starts, anchor_min, anchor_vec, onboard, onboard_bookings, plan_km = (
        plan_state
    )
    break_earliest, break_latest, break_duration = break_state
    (requested_min,) = booking_rules
    late_after_min, late_cost, delay_cost, tolerance = rules
    width = kinds.shape[1] + 2
    new_kinds = np.empty(width, dtype=np.int64)
    new_refs = np.empty(width, dtype=np.int64)
    origin = np.empty(width, dtype=np.int64)
    start_out = np.empty(width)
    leg_min_out = np.empty(width)
    leg_km_out = np.empty(width)
    for driver in range(best_valid.shape[0]):
        size = sizes[driver]
        begin = max(anchor_min[driver], now_min)
        for c in range(candidates.shape[0]):
            booking = candidates[c]
            if best_valid[driver, booking]:
                continue
            best = np.inf
            best_km = 0.0
            best_pickup = 0.0
            best_p = 0
            best_d = 1
            if fits[driver, booking]:
                for p in range(size + 1):
                    for d in range(p + 1, size + 2):
                        plan_with_insertion(
                            kinds[driver],
                            refs[driver],
                            size,
                            booking,
                            p,
                            d,
                            new_kinds,
                            new_refs,
                            origin,
                        )
                        feasible, km, _ = schedule_stops(
                            new_kinds,
                            new_refs,
                            size + 2,
                            begin,
                            anchor_vec[driver],
                            onboard[driver],
                            onboard_bookings[driver],
                            capacity[driver],
                            max_bookings_on_board,
                            booking_arrays,
                            picked_done_min,
                            break_earliest[driver],
                            break_latest[driver],
                            break_duration[driver],
                            shift_end_min[driver],
                            travel,
                            tolerance,
                            start_out,
                            leg_min_out,
                            leg_km_out,
                        )
                        if not feasible:
                            continue
                        push = 0.0
                        for k in range(size + 2):
                            if origin[k] >= 0:
                                push = max(push, start_out[k] - starts[driver, origin[k]])
                        added_km = km - plan_km[driver]
                        pickup = start_out[p]
                        late_min = max(pickup - requested_min[booking] - late_after_min, 0.0)
                        value = added_km + late_cost * late_min + delay_cost * push
                        if value < best - COST_TIE:
                            best = value
                            best_km = added_km
                            best_pickup = pickup
                            best_p = p
                            best_d = d
            best_cost[driver, booking] = best
            best_added_km[driver, booking] = best_km
            best_pickup_min[driver, booking] = best_pickup
            best_position[driver, booking] = best_p
            best_dropoff_position[driver, booking] = best_d
            best_valid[driver, booking] = True


@njit(cache=True, nogil=True)
def stop_insertion_effects(
    pair_driver,
    pair_booking,
    pair_position,
    pair_dropoff_position,
    now_min,
    plan_state,
    booking_arrays,
    capacity,
    max_bookings_on_board,
    picked_done_min,
    break_state,
    shift_end_min,
    travel,
    tolerance,
    requested_min,
    ride_min,
    late_after_min,
    out,
):  # pragma: no cover - compiled
    """What each pair's insertion (pickup at ``pair_position``, drop-off at
    ``pair_dropoff_position`` in the plan after the pickup went in, as
    :func:`fill_stop_insertions` counts them) does to the driver's stops, written to ``out``
    ``(pairs, 11)``, times in minutes against the stops' planned starts:

    0 planned pickups made late, 1 delay of the next planned pickup after the inserted one,
    2 delay summed over the planned pickups, 3 lateness added to the planned pickups,
    4 delay summed over the drop-offs of the passengers on board, 5 delay summed over the
    drop-offs of the bookings planned (not yet picked up), 6 the inserted booking's ride time
    over its direct time, 7-9 the places of each kind left while it is on board (the least
    over its ride; three kinds at most), 10 whether another booking is on board during its
    ride (1) or not (0). An infeasible insertion leaves its row at zero but
    for ``-1`` in column 6.

    ``plan_state`` is (kinds, refs, sizes, starts, anchor_min, anchor_vec, onboard,
    onboard_bookings), ``break_state`` (earliest, latest, duration), as in
    :func:`fill_stop_insertions`.
    """
    kinds, refs, sizes, starts, anchor_min, anchor_vec, onboard, onboard_bookings = plan_state
    break_earliest, break_latest, break_duration = break_state
    load_by_kind = booking_arrays[6]
    service_min = booking_arrays[5]
    n_kinds = onboard.shape[1]
    width = kinds.shape[1] + 2
    new_kinds = np.empty(width, dtype=np.int64)
    new_refs = np.empty(width, dtype=np.int64)
    origin = np.empty(width, dtype=np.int64)
    start_out = np.empty(width)
    leg_min_out = np.empty(width)
    leg_km_out = np.empty(width)
    load = np.empty(n_kinds, dtype=np.int64)
    least_left = np.empty(n_kinds, dtype=np.int64)
    for q in range(pair_driver.shape[0]):
        driver = pair_driver[q]
        booking = pair_booking[q]
        p = pair_position[q]
        d = pair_dropoff_position[q]
        size = sizes[driver]
        for k in range(out.shape[1]):
            out[q, k] = 0.0
        plan_with_insertion(
            kinds[driver], refs[driver], size, booking, p, d, new_kinds, new_refs, origin
        )
        feasible, _, _ = schedule_stops(
            new_kinds,
            new_refs,
            size + 2,
            max(anchor_min[driver], now_min),
            anchor_vec[driver],
            onboard[driver],
            onboard_bookings[driver],
            capacity[driver],
            max_bookings_on_board,
            booking_arrays,
            picked_done_min,
            break_earliest[driver],
            break_latest[driver],
            break_duration[driver],
            shift_end_min[driver],
            travel,
            tolerance,
            start_out,
            leg_min_out,
            leg_km_out,
        )
        if not feasible:
            out[q, 6] = -1.0
            continue
        first = True
        count = onboard_bookings[driver]
        for c in range(n_kinds):
            load[c] = onboard[driver, c]
            least_left[c] = capacity[driver, c]
        for k in range(size + 2):
            kind = new_kinds[k]
            ref = new_refs[k]
            if kind == PICKUP:
                count += 1
                for c in range(n_kinds):
                    load[c] += load_by_kind[ref, c]
            elif kind == DROPOFF:
                count -= 1
                for c in range(n_kinds):
                    load[c] -= load_by_kind[ref, c]
            if p <= k < d:
                if count > 1:
                    out[q, 10] = 1.0
                for c in range(n_kinds):
                    least_left[c] = min(least_left[c], capacity[driver, c] - load[c])
            if origin[k] < 0 or kind == BREAK:
                continue
            before = starts[driver, origin[k]]
            delay = start_out[k] - before
            if kind == PICKUP:
                if k > p and first:
                    out[q, 1] = max(delay, 0.0)
                    first = False
                out[q, 2] += max(delay, 0.0)
                limit = requested_min[ref] + late_after_min
                if start_out[k] > limit and before <= limit:
                    out[q, 0] += 1.0
                out[q, 3] += max(start_out[k] - limit, 0.0) - max(before - limit, 0.0)
            elif np.isnan(picked_done_min[ref]):
                out[q, 5] += max(delay, 0.0)
            else:
                out[q, 4] += max(delay, 0.0)
        ride = start_out[d] - start_out[p] - service_min[booking]
        out[q, 6] = ride / ride_min[booking] if ride_min[booking] > 0.0 else 1.0
        for c in range(min(n_kinds, 3)):
            out[q, 7 + c] = least_left[c]
