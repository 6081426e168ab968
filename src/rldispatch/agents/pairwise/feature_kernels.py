"""Compiled loops of the pairwise features (Numba): one pass over the insertion table instead
of a NumPy call per statistic, so a decision of a large fleet costs a few microseconds here."""

from __future__ import annotations

import numpy as np
from numba import njit

from rldispatch.sim.knock_on import knock_on_effects


@njit(cache=True, nogil=True)
def candidate_kernel(cost, feasible, driver_rank, k):  # pragma: no cover - compiled
    """Per booking (column) of ``cost`` (drivers x bookings, ``inf`` where infeasible): its
    ``k`` feasible drivers of least cost, ties by driver id rank, and its feasible drivers'
    count, least and second least cost (over every driver, ``inf`` when there are none).

    Returns ``(driver, slot, rank, n_feasible, best, second)``; the candidates by slot, then
    rank among the booking's candidates.
    """
    n_drivers, m = cost.shape
    n_feasible = np.zeros(m, dtype=np.int64)
    best = np.full(m, np.inf)
    second = np.full(m, np.inf)
    out_driver = np.empty(m * k, dtype=np.int64)
    out_slot = np.empty(m * k, dtype=np.int64)
    out_rank = np.empty(m * k, dtype=np.int64)
    top_driver = np.empty(k, dtype=np.int64)
    top_cost = np.empty(k)
    n_out = 0
    for j in range(m):
        kept = 0
        for d in range(n_drivers):
            c = cost[d, j]
            if c < best[j]:
                second[j] = best[j]
                best[j] = c
            elif c < second[j]:
                second[j] = c
            if not feasible[d, j]:
                continue
            n_feasible[j] += 1
            if k == 0:
                continue
            # Keep the k least (cost, id rank), in order: insert d where it belongs.
            if kept == k:
                last = top_driver[k - 1]
                if c > top_cost[k - 1] or (
                    c == top_cost[k - 1] and driver_rank[d] > driver_rank[last]
                ):
                    continue
                kept -= 1
            i = kept
            while i > 0 and (
                c < top_cost[i - 1]
                or (c == top_cost[i - 1] and driver_rank[d] < driver_rank[top_driver[i - 1]])
            ):
                top_cost[i] = top_cost[i - 1]
                top_driver[i] = top_driver[i - 1]
                i -= 1
            top_cost[i] = c
            top_driver[i] = d
            kept += 1
        for i in range(kept):
            out_driver[n_out] = top_driver[i]
            out_slot[n_out] = j
            out_rank[n_out] = i
            n_out += 1
    return (
        out_driver[:n_out],
        out_slot[:n_out],
        out_rank[:n_out],
        n_feasible,
        best,
        second,
    )


@njit(cache=True, nogil=True)
def driver_rows(
    now,
    free_min,
    free_booking,
    plan_sizes,
    rides,
    shift_start_min,
    shift_end_min,
    capacity,
    idle,
    dropoff_xy,
    start_xy,
):  # pragma: no cover - compiled
    """The rows of ``DRIVER_FEATURES`` (float32, one per driver) and the drivers on shift."""
    n_drivers = free_min.shape[0]
    rows = np.empty((n_drivers, 11), dtype=np.float32)
    rides_total = 0.0
    for d in range(n_drivers):
        rides_total += np.float64(rides[d])
    rides_mean = rides_total / n_drivers if n_drivers else 0.0
    on_shift_count = 0
    for d in range(n_drivers):
        on_shift = shift_start_min[d] <= now and shift_end_min[d] > now
        on_shift_count += on_shift
        ride_count = np.float64(rides[d])
        rows[d, 0] = (free_min[d] - now) / 60.0
        rows[d, 1] = plan_sizes[d] / 4.0
        rows[d, 2] = ride_count / 10.0
        rows[d, 3] = (ride_count - rides_mean) / 10.0
        rows[d, 4] = max(shift_end_min[d] - now, 0.0) / 60.0
        rows[d, 5] = on_shift
        rows[d, 6] = max(shift_start_min[d] - now, 0.0) / 60.0
        rows[d, 7] = capacity[d] - 1
        rows[d, 8] = idle[d]
        if free_booking[d] >= 0:
            rows[d, 9] = dropoff_xy[free_booking[d], 0]
            rows[d, 10] = dropoff_xy[free_booking[d], 1]
        else:
            rows[d, 9] = start_xy[d, 0]
            rows[d, 10] = start_xy[d, 1]
    return rows, on_shift_count


@njit(cache=True, nogil=True)
def pair_rows(
    pair_driver,
    pair_slot,
    pair_rank,
    k,
    now,
    pair_cost,
    best,
    driver_best,
    added_km,
    pickup_min,
    requested_min,
    latest_min,
    position,
    plan_sizes,
    made_late,
    next_delay,
    total_delay,
    onboard_delay,
    dropoff_delay,
    ride_ratio,
    places_left,
    shared,
    late_after_min,
    tie_tolerance,
):  # pragma: no cover - compiled
    """The rows of ``PAIR_FEATURES`` (float32, one per candidate pair); ``added_km`` is the
    insertion table's (drivers x slots), the other pair arguments are per pair."""
    n = pair_driver.shape[0]
    rows = np.zeros((n, 23), dtype=np.float32)
    rank_scale = max(k, 1)
    for q in range(n):
        driver, slot = pair_driver[q], pair_slot[q]
        cost = pair_cost[q]
        pickup = pickup_min[q]
        late_min = max(pickup - requested_min[q] - late_after_min, 0.0)
        size = plan_sizes[q]
        rows[q, 0] = cost / 10.0
        rows[q, 1] = (cost - best[slot]) / 10.0
        rows[q, 2] = (cost - driver_best[driver]) / 10.0
        rows[q, 3] = added_km[driver, slot] / 10.0
        rows[q, 4] = (pickup - now) / 60.0
        rows[q, 5] = (pickup - requested_min[q]) / 10.0
        rows[q, 6] = late_min > 0.0
        rows[q, 7] = late_min / 10.0
        rows[q, 8] = (latest_min[q] - pickup) / 10.0
        rows[q, 9] = position[q] / max(size, 1)
        rows[q, 10] = position[q] >= size
        rows[q, 11] = made_late[q]
        rows[q, 12] = next_delay[q] / 10.0
        rows[q, 13] = total_delay[q] / 10.0
        rows[q, 14] = cost <= best[slot] + tie_tolerance
        rows[q, 15] = pair_rank[q] / rank_scale
        rows[q, 16] = onboard_delay[q] / 10.0
        rows[q, 17] = dropoff_delay[q] / 10.0
        rows[q, 18] = ride_ratio[q]
        rows[q, 19] = places_left[q, 0] / 4.0
        rows[q, 20] = places_left[q, 1]
        rows[q, 21] = places_left[q, 2]
        rows[q, 22] = shared[q]
    return rows


@njit(cache=True, nogil=True)
def booking_rows(
    visible,
    now,
    latest_min,
    earliest_min,
    requested_min,
    priority,
    load,
    ride_km,
    n_feasible,
    n_drivers,
    best,
    second,
    pickup_xy,
    dropoff_xy,
    regret_cap,
):  # pragma: no cover - compiled
    """The rows of ``BOOKING_FEATURES`` (float32, one per visible booking)."""
    m = visible.shape[0]
    rows = np.empty((m, 14), dtype=np.float32)
    driver_scale = max(n_drivers, 1)
    for j in range(m):
        b = visible[j]
        least = best[j] if np.isfinite(best[j]) else 0.0
        if np.isfinite(second[j]) and np.isfinite(best[j]):
            regret = min((second[j] - least) / 10.0, regret_cap)
        else:
            regret = regret_cap
        rows[j, 0] = (latest_min[b] - now) / 60.0
        rows[j, 1] = (earliest_min[b] - now) / 60.0
        rows[j, 2] = (requested_min[b] - now) / 60.0
        rows[j, 3] = priority[b]
        rows[j, 4] = load[b] - 1
        rows[j, 5] = ride_km[b] / 10.0
        rows[j, 6] = n_feasible[j] / driver_scale
        rows[j, 7] = n_feasible[j] / 10.0
        rows[j, 8] = least / 10.0
        rows[j, 9] = regret
        rows[j, 10] = pickup_xy[b, 0]
        rows[j, 11] = pickup_xy[b, 1]
        rows[j, 12] = dropoff_xy[b, 0]
        rows[j, 13] = dropoff_xy[b, 1]
    return rows


@njit(cache=True, nogil=True)
def state_rows(
    now,
    k,
    free_min,
    free_booking,
    plan_sizes,
    rides,
    shift_start_min,
    shift_end_min,
    capacity,
    idle,
    driver_rank,
    frame_pickup,
    frame_dropoff,
    frame_driver_start,
    visible,
    table_feasible,
    table_cost,
    latest_min,
    earliest_min,
    requested_min,
    priority,
    load,
    ride_km,
    regret_cap,
):  # pragma: no cover - compiled
    """The driver and booking rows of a state and its candidate pairs, in one pass:
    ``(driver rows, drivers on shift, idle drivers, booking rows, cost, each driver's least
    cost, pair driver, pair slot, pair rank, each booking's least cost)``; ``cost`` is the
    table's, ``inf`` where infeasible. The table's arrays are ``(drivers, visible
    bookings)``."""
    n_drivers = free_min.shape[0]
    m = visible.shape[0]
    idle_count = 0
    for d in range(n_drivers):
        idle_count += idle[d]
    drivers, on_shift_count = driver_rows(
        now,
        free_min,
        free_booking,
        plan_sizes,
        rides,
        shift_start_min,
        shift_end_min,
        capacity,
        idle,
        frame_dropoff,
        frame_driver_start,
    )
    cost = np.empty((n_drivers, m))
    driver_best = np.full(n_drivers, np.inf)
    for d in range(n_drivers):
        for j in range(m):
            value = table_cost[d, j] if table_feasible[d, j] else np.inf
            cost[d, j] = value
            if value < driver_best[d]:
                driver_best[d] = value
    pair_driver, pair_slot, pair_rank, n_feasible, best, second = candidate_kernel(
        cost, table_feasible, driver_rank, k
    )
    bookings = booking_rows(
        visible,
        now,
        latest_min,
        earliest_min,
        requested_min,
        priority,
        load,
        ride_km,
        n_feasible,
        n_drivers,
        best,
        second,
        frame_pickup,
        frame_dropoff,
        regret_cap,
    )
    return (
        drivers,
        on_shift_count,
        idle_count,
        bookings,
        cost,
        driver_best,
        pair_driver,
        pair_slot,
        pair_rank,
        best,
    )


@njit(cache=True, nogil=True)
def plain_pair_rows(
    now,
    k,
    pair_driver,
    pair_slot,
    pair_rank,
    cost,
    best,
    driver_best,
    visible,
    table_added_km,
    table_pickup_min,
    table_position,
    plan_sizes,
    capacity_by_kind,
    load_by_kind,
    latest_min,
    plan,
    booking_state,
    late_after_min,
    travel,
    tie_tolerance,
):  # pragma: no cover - compiled
    """The pair rows of a state of plans of whole bookings: what each insertion does to the
    plan after it from :func:`~rldispatch.sim.knock_on.knock_on_effects`, one booking on
    board at a time (its drop-off follows its pickup, each planned drop-off moves with its
    pickup). ``plan`` is every driver's plan packed, ``(bookings, offsets, starts)``;
    ``booking_state`` is :func:`~rldispatch.sim.knock_on.knock_on_booking_state`'s."""
    pickup_vec, dropoff_vec, minutes_per_km, earliest_min, requested_min, pickup_to_free_min = (
        booking_state
    )
    n = pair_driver.shape[0]
    booking = np.empty(n, dtype=np.int64)
    pair_cost = np.empty(n)
    pickup = np.empty(n)
    position = np.empty(n, dtype=np.int64)
    requested = np.empty(n)
    latest = np.empty(n)
    sizes = np.empty(n, dtype=np.int64)
    places_left = np.empty((n, capacity_by_kind.shape[1]), dtype=capacity_by_kind.dtype)
    for q in range(n):
        d, j = pair_driver[q], pair_slot[q]
        b = visible[j]
        booking[q] = b
        pair_cost[q] = cost[d, j]
        pickup[q] = table_pickup_min[d, j]
        position[q] = np.int64(table_position[d, j])
        requested[q] = requested_min[b]
        latest[q] = latest_min[b]
        sizes[q] = plan_sizes[d]
        for kind in range(capacity_by_kind.shape[1]):
            places_left[q, kind] = capacity_by_kind[d, kind] - load_by_kind[b, kind]
    made_late, next_delay, total_delay, _ = knock_on_effects(
        pair_driver,
        booking,
        pickup,
        position,
        plan[0],
        plan[1],
        plan[2],
        pickup_vec,
        dropoff_vec,
        minutes_per_km,
        earliest_min,
        requested_min,
        pickup_to_free_min,
        late_after_min,
        travel,
    )
    return pair_rows(
        pair_driver,
        pair_slot,
        pair_rank,
        k,
        now,
        pair_cost,
        best,
        driver_best,
        table_added_km,
        pickup,
        requested,
        latest,
        position,
        sizes,
        made_late,
        next_delay,
        total_delay,
        np.zeros(n),
        total_delay,
        np.ones(n),
        places_left,
        np.zeros(n),
        late_after_min,
        tie_tolerance,
    )
