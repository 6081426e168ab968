"""Ruin-and-recreate search for the static dial-a-ride problem (Cordeau 2006), compiled.

A solution is one sequence of stops per vehicle. Node 0 is the depot, nodes ``1..n`` the
pickups and ``n+1..2n`` the drop-offs (request ``i`` is nodes ``i+1`` and ``i+1+n``).

A route is judged by :func:`route_schedule`: the earliest schedule that meets every lower
bound (time windows opening, travel plus service, and what the ride-time and route-duration
limits ask of a pickup or of the depot departure once later stops are known) is found by
propagating those bounds until nothing moves (longest paths in a difference-constraint
graph); the route is feasible exactly when that schedule closes no window late and the load
stays within capacity. That is exact for the fixed order, so every route the search keeps is
feasible, and the independent checker re-verifies the result.

The search: best insertion of every request (cheapest position over all vehicles); then, for
each iteration, remove a few requests (random, related to a seed request, or a run of
consecutive stops of a route), re-insert them one by one at their cheapest feasible
positions (in one of several orders, a position skipped now and then), and accept the new
solution by simulated annealing on distance plus a penalty per request left out. All random
draws come from one seeded generator (xorshift), so a run of a given number of iterations is
the same on any machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from rldispatch.scenarios.cordeau import CordeauInstance

EPS_MIN = 1e-9
"""Slack on a closing time window (the checker allows 1e-6)."""
MOVE_MIN = 1e-10
"""Smallest raise of a lower bound that counts as a change while propagating."""
TEMPERATURE_START = 0.6
TEMPERATURE_END = 0.01
"""Annealing temperatures, as fractions of the mean arc length of the first solution."""
BATCH_TARGET_S = 0.25
"""Wall-clock length of one compiled batch of iterations between two clock readings."""


@dataclass(frozen=True)
class DarpData:
    """The instance as the compiled search reads it (node arrays, see the module docstring)."""

    n: int
    vehicles: int
    capacity: int
    max_ride: float
    max_duration: float
    depot_open: float
    depot_close: float
    dist: np.ndarray
    service: np.ndarray
    earliest: np.ndarray
    latest: np.ndarray
    demand: np.ndarray
    related: np.ndarray
    """Per request, all requests from the most related (itself) to the least."""


def darp_data(instance: CordeauInstance) -> DarpData:
    """Node arrays of ``instance``, windows tightened with what the ride limit implies."""
    n = instance.n_requests
    points = np.vstack(
        [np.asarray(instance.depot_xy)[None, :], instance.pickup_xy, instance.dropoff_xy]
    )
    dist = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    service = np.concatenate([[0.0], instance.pickup_service, instance.dropoff_service])
    earliest = np.concatenate(
        [[instance.depot_window[0]], instance.pickup_window[:, 0], instance.dropoff_window[:, 0]]
    ).astype(np.float64)
    latest = np.concatenate(
        [
            [instance.end_depot_window[1]],
            instance.pickup_window[:, 1],
            instance.dropoff_window[:, 1],
        ]
    ).astype(np.float64)
    ride = float(instance.max_ride_time)
    for i in range(n):
        p, d = i + 1, i + 1 + n
        direct = service[p] + dist[p, d]
        earliest[p] = max(earliest[p], earliest[d] - ride - service[p])
        latest[p] = min(latest[p], latest[d] - direct)
        earliest[d] = max(earliest[d], earliest[p] + direct)
        latest[d] = min(latest[d], latest[p] + service[p] + ride)
    demand = np.concatenate([[0], instance.load, -instance.load]).astype(np.int64)
    # Relatedness of two requests: how far apart their stops are in space and in time.
    mid = 0.5 * (earliest + latest)
    pick, drop = np.arange(1, n + 1), np.arange(n + 1, 2 * n + 1)
    related = (
        dist[np.ix_(pick, pick)]
        + dist[np.ix_(drop, drop)]
        + 0.5 * np.abs(mid[pick][:, None] - mid[pick][None, :])
        + 0.5 * np.abs(mid[drop][:, None] - mid[drop][None, :])
    )
    return DarpData(
        n=n,
        vehicles=instance.n_vehicles,
        capacity=int(instance.capacity),
        max_ride=ride,
        max_duration=float(instance.max_route_duration),
        depot_open=float(instance.depot_window[0]),
        depot_close=float(instance.end_depot_window[1]),
        dist=np.ascontiguousarray(dist),
        service=service.astype(np.float64),
        earliest=earliest,
        latest=latest,
        demand=demand,
        related=np.ascontiguousarray(np.argsort(related, axis=1, kind="stable")),
    )


# --- compiled kernels ---------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _rand(state: np.ndarray) -> float:  # pragma: no cover - compiled
    """Uniform in [0, 1) from a xorshift64* generator whose state is ``state[0]``."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return float((x * np.uint64(2685821657736338717)) >> np.uint64(11)) / 9007199254740992.0


@njit(cache=True, inline="always")
def _randint(state: np.ndarray, low: int, high: int) -> int:  # pragma: no cover - compiled
    """Uniform integer in [low, high]."""
    return low + int(_rand(state) * (high - low + 1))


@njit(cache=True)
def route_schedule(
    nodes, k, n, capacity, max_ride, max_duration, depot_open, depot_close,
    dist, service, earliest, latest, demand, start, lower, position,
):  # fmt: skip  # pragma: no cover - compiled
    """True when the ``k`` stops ``nodes[:k]`` make a feasible route; ``start`` then holds
    the earliest feasible service start of each stop (``lower`` and ``position``: scratch)."""
    if k == 0:
        return True
    load = 0
    for p in range(k):
        node = nodes[p]
        load += demand[node]
        if load > capacity:
            return False
        lower[p] = earliest[node]
        position[node] = p
    first = nodes[0]
    out_first = dist[0, first]
    if lower[0] < depot_open + out_first:
        lower[0] = depot_open + out_first
    for _ in range(k + 3):
        start[0] = lower[0]
        if start[0] > latest[first] + EPS_MIN:
            return False
        for p in range(1, k):
            prev = nodes[p - 1]
            node = nodes[p]
            arrive = start[p - 1] + service[prev] + dist[prev, node]
            start[p] = arrive if arrive > lower[p] else lower[p]
            if start[p] > latest[node] + EPS_MIN:
                return False
        last = nodes[k - 1]
        back = start[k - 1] + service[last] + dist[last, 0]
        if back > depot_close + EPS_MIN:
            return False
        changed = False
        need = back - max_duration + out_first
        if need > start[0] + MOVE_MIN:
            lower[0] = need
            changed = True
        for p in range(k):
            node = nodes[p]
            if node > n:
                q = position[node - n]
                need = start[p] - max_ride - service[node - n]
                if need > start[q] + MOVE_MIN:
                    lower[q] = need
                    changed = True
        if not changed:
            return True
    return False


@njit(cache=True)
def _route_cost(nodes, k, dist):  # pragma: no cover - compiled
    if k == 0:
        return 0.0
    total = dist[0, nodes[0]] + dist[nodes[k - 1], 0]
    for p in range(1, k):
        total += dist[nodes[p - 1], nodes[p]]
    return total


@njit(cache=True)
def _best_insertion(
    request, routes, lengths, starts, n, capacity, max_ride, max_duration, depot_open,
    depot_close, dist, service, earliest, latest, demand, blink, rng, scratch, start_tmp,
    lower, position, cand_delta, cand_code, latest_start,
):  # fmt: skip  # pragma: no cover - compiled
    """Cheapest feasible insertion of ``request`` (0-based): (delta, vehicle, i, j) with the
    pickup before the stop now at ``i`` and the drop-off before the stop now at ``j``
    (``j >= i``); vehicle -1 when none fits. ``blink``: share of positions skipped."""
    pick = request + 1
    drop = request + 1 + n
    q = demand[pick]
    count = 0
    width = routes.shape[1] + 1
    empty_tried = False
    for v in range(routes.shape[0]):
        k = lengths[v]
        if k == 0:
            if empty_tried:
                continue
            empty_tried = True
        nodes = routes[v]
        # Latest start of each stop that leaves the stops after it their windows and the
        # return to the depot (ride and duration limits ignored: a necessary condition).
        if k > 0:
            last = nodes[k - 1]
            latest_start[k] = depot_close
            latest_start[k - 1] = min(latest[last], depot_close - service[last] - dist[last, 0])
            for p in range(k - 2, -1, -1):
                node = nodes[p]
                bound = latest_start[p + 1] - service[node] - dist[node, nodes[p + 1]]
                latest_start[p] = min(latest[node], bound)
        else:
            latest_start[0] = depot_close
        load_before = 0
        for i in range(k + 1):
            if i > 0:
                load_before += demand[nodes[i - 1]]
            if load_before + q > capacity:
                continue
            prev_i = nodes[i - 1] if i > 0 else 0
            ready = starts[v, i - 1] + service[prev_i] if i > 0 else depot_open
            pick_at = ready + dist[prev_i, pick]
            if pick_at > latest[pick] + EPS_MIN:
                break
            if pick_at < earliest[pick]:
                pick_at = earliest[pick]
            next_i = nodes[i] if i < k else 0
            add_pick = dist[prev_i, pick] + dist[pick, next_i] - dist[prev_i, next_i]
            # drop-off right after the pickup
            drop_at = max(earliest[drop], pick_at + service[pick] + dist[pick, drop])
            after = drop_at + service[drop] + dist[drop, next_i]
            if drop_at <= latest[drop] + EPS_MIN and after <= latest_start[i] + EPS_MIN:
                delta = dist[prev_i, pick] + dist[pick, drop] + dist[drop, next_i]
                delta -= dist[prev_i, next_i]
                if blink == 0.0 or _rand(rng) >= blink:
                    cand_delta[count] = delta
                    cand_code[count] = (v * width + i) * width + i
                    count += 1
            if i == k:
                continue
            # latest pickup start that still lets the stop now at i keep its latest start
            pick_latest = min(latest[pick], latest_start[i] - service[pick] - dist[pick, next_i])
            if pick_at > pick_latest + EPS_MIN:
                continue
            load_between = load_before + q
            for j in range(i + 1, k + 1):
                load_between += demand[nodes[j - 1]]
                if load_between > capacity:
                    break
                prev_j = nodes[j - 1]
                drop_at = starts[v, j - 1] + service[prev_j] + dist[prev_j, drop]
                if drop_at > latest[drop] + EPS_MIN:
                    break
                if drop_at - (pick_latest + service[pick]) > max_ride + EPS_MIN:
                    break
                if drop_at < earliest[drop]:
                    drop_at = earliest[drop]
                next_j = nodes[j] if j < k else 0
                if drop_at + service[drop] + dist[drop, next_j] > latest_start[j] + EPS_MIN:
                    continue
                delta = add_pick + dist[prev_j, drop] + dist[drop, next_j] - dist[prev_j, next_j]
                if blink == 0.0 or _rand(rng) >= blink:
                    cand_delta[count] = delta
                    cand_code[count] = (v * width + i) * width + j
                    count += 1
    if count == 0:
        return math.inf, -1, 0, 0
    order = np.argsort(cand_delta[:count])
    for c in range(count):
        code = cand_code[order[c]]
        j = code % width
        i = (code // width) % width
        v = code // (width * width)
        k = lengths[v]
        nodes = routes[v]
        size = 0
        for p in range(k + 1):
            if p == i:
                scratch[size] = pick
                size += 1
            if p == j:
                scratch[size] = drop
                size += 1
            if p < k:
                scratch[size] = nodes[p]
                size += 1
        if route_schedule(
            scratch, size, n, capacity, max_ride, max_duration, depot_open, depot_close,
            dist, service, earliest, latest, demand, start_tmp, lower, position,
        ):  # fmt: skip
            return cand_delta[order[c]], v, i, j
    return math.inf, -1, 0, 0


@njit(cache=True)
def _insert(
    request, v, i, j, routes, lengths, starts, n, capacity, max_ride, max_duration,
    depot_open, depot_close, dist, service, earliest, latest, demand, scratch, lower, position,
    where,
):  # fmt: skip  # pragma: no cover - compiled
    pick = request + 1
    drop = request + 1 + n
    k = lengths[v]
    size = 0
    for p in range(k + 1):
        if p == i:
            scratch[size] = pick
            size += 1
        if p == j:
            scratch[size] = drop
            size += 1
        if p < k:
            scratch[size] = routes[v, p]
            size += 1
    for p in range(size):
        routes[v, p] = scratch[p]
    lengths[v] = size
    where[request] = v
    route_schedule(
        routes[v], size, n, capacity, max_ride, max_duration, depot_open, depot_close,
        dist, service, earliest, latest, demand, starts[v], lower, position,
    )  # fmt: skip


@njit(cache=True)
def _remove(request, routes, lengths, where, n):  # pragma: no cover - compiled
    v = where[request]
    if v < 0:
        return -1
    k = lengths[v]
    size = 0
    for p in range(k):
        node = routes[v, p]
        if node != request + 1 and node != request + 1 + n:
            routes[v, size] = node
            size += 1
    lengths[v] = size
    where[request] = -1
    return v


@njit(cache=True)
def _reschedule(
    v, routes, lengths, starts, n, capacity, max_ride, max_duration, depot_open, depot_close,
    dist, service, earliest, latest, demand, lower, position,
):  # fmt: skip  # pragma: no cover - compiled
    return route_schedule(
        routes[v], lengths[v], n, capacity, max_ride, max_duration, depot_open, depot_close,
        dist, service, earliest, latest, demand, starts[v], lower, position,
    )  # fmt: skip


@njit(cache=True)
def _total_cost(routes, lengths, dist):  # pragma: no cover - compiled
    total = 0.0
    for v in range(routes.shape[0]):
        total += _route_cost(routes[v], lengths[v], dist)
    return total


@njit(cache=True)
def search_batch(
    routes, lengths, starts, where, best_routes, best_lengths, best_cost_box, rng,
    iterations, temp_from, temp_to, penalty,
    n, capacity, max_ride, max_duration, depot_open, depot_close,
    dist, service, earliest, latest, demand, related, construct,
):  # fmt: skip  # pragma: no cover - compiled
    """Run ``iterations`` ruin-and-recreate steps on the current solution (in place), the
    temperature going geometrically from ``temp_from`` to ``temp_to``; keeps the best
    complete-or-not solution by distance plus ``penalty`` per request left out in
    ``best_*`` (``best_cost_box[0]`` its value). ``construct``: first insert every request
    left out, in order of its earliest time, and return."""
    m = routes.shape[0]
    width = routes.shape[1]
    scratch = np.empty(width + 2, dtype=np.int64)
    start_tmp = np.empty(width + 2, dtype=np.float64)
    lower = np.empty(width + 2, dtype=np.float64)
    position = np.empty(2 * n + 1, dtype=np.int64)
    max_cand = (width + m + 2) * (width + m + 2) // 2 + 16
    cand_delta = np.empty(max_cand, dtype=np.float64)
    cand_code = np.empty(max_cand, dtype=np.int64)
    latest_start = np.empty(width + 2, dtype=np.float64)
    saved_routes = routes.copy()
    saved_lengths = lengths.copy()
    saved_starts = starts.copy()
    saved_where = where.copy()
    removed = np.empty(n, dtype=np.int64)
    keys = np.empty(n, dtype=np.float64)
    out_count = 0
    for r in range(n):
        if where[r] < 0:
            out_count += 1
    current = _total_cost(routes, lengths, dist) + penalty * out_count

    if construct:
        count = 0
        for r in range(n):
            if where[r] < 0:
                removed[count] = r
                keys[count] = (
                    earliest[r + 1]
                    if earliest[r + 1] < earliest[r + 1 + n] - (max_ride + service[r + 1])
                    else earliest[r + 1 + n] - max_ride
                )
                count += 1
        order = np.argsort(keys[:count])
        for c in range(count):
            r = removed[order[c]]
            delta, v, i, j = _best_insertion(
                r, routes, lengths, starts, n, capacity, max_ride, max_duration, depot_open,
                depot_close, dist, service, earliest, latest, demand, 0.0, rng, scratch,
                start_tmp, lower, position, cand_delta, cand_code, latest_start,
            )  # fmt: skip
            if v >= 0:
                _insert(
                    r, v, i, j, routes, lengths, starts, n, capacity, max_ride, max_duration,
                    depot_open, depot_close, dist, service, earliest, latest, demand, scratch,
                    lower, position, where,
                )  # fmt: skip
        out_count = 0
        for r in range(n):
            if where[r] < 0:
                out_count += 1
        current = _total_cost(routes, lengths, dist) + penalty * out_count
        if current < best_cost_box[0]:
            best_cost_box[0] = current
            best_routes[:, :] = routes
            best_lengths[:] = lengths
        return current

    max_remove = max(2, min(n // 3, 30))
    ratio = temp_to / temp_from
    for it in range(iterations):
        temperature = temp_from * ratio ** (it / max(1, iterations))
        saved_routes[:, :] = routes
        saved_lengths[:] = lengths
        saved_starts[:, :] = starts
        saved_where[:] = where
        # ruin
        size = _randint(rng, 2, max_remove)
        count = 0
        for r in range(n):
            if where[r] < 0:
                removed[count] = r
                count += 1
        kind = _rand(rng)
        if kind < 0.45 or count > 0:
            seed_request = (
                removed[_randint(rng, 0, count - 1)] if count > 0 else _randint(rng, 0, n - 1)
            )
            by_relation = related[seed_request]
            taken = 0
            while taken < size and count < n:
                rank = int(_rand(rng) ** 3 * n)
                r = by_relation[rank]
                if where[r] >= 0:
                    _remove(r, routes, lengths, where, n)
                    removed[count] = r
                    count += 1
                taken += 1
        elif kind < 0.75:
            v = _randint(rng, 0, m - 1)
            tries = 0
            while lengths[v] == 0 and tries < 4 * m:
                v = _randint(rng, 0, m - 1)
                tries += 1
            k = lengths[v]
            if k > 0:
                run = min(k, _randint(rng, 2, 2 * size))
                first = _randint(rng, 0, k - run)
                for p in range(first, first + run):
                    node = saved_routes[v, p]
                    r = node - 1 if node <= n else node - 1 - n
                    if where[r] >= 0:
                        _remove(r, routes, lengths, where, n)
                        removed[count] = r
                        count += 1
        else:
            for _ in range(size):
                r = _randint(rng, 0, n - 1)
                if where[r] >= 0:
                    _remove(r, routes, lengths, where, n)
                    removed[count] = r
                    count += 1
        for v in range(m):
            if lengths[v] != saved_lengths[v]:
                _reschedule(
                    v, routes, lengths, starts, n, capacity, max_ride, max_duration,
                    depot_open, depot_close, dist, service, earliest, latest, demand, lower,
                    position,
                )  # fmt: skip
        # recreate
        sort_kind = _rand(rng)
        for c in range(count):
            r = removed[c]
            if sort_kind < 0.4:
                keys[c] = _rand(rng)
            elif sort_kind < 0.8:
                keys[c] = min(earliest[r + 1], earliest[r + 1 + n] - max_ride)
            else:
                keys[c] = -dist[r + 1, r + 1 + n] - dist[0, r + 1]
        order = np.argsort(keys[:count])
        blink = 0.01 if _rand(rng) < 0.5 else 0.0
        for c in range(count):
            r = removed[order[c]]
            delta, v, i, j = _best_insertion(
                r, routes, lengths, starts, n, capacity, max_ride, max_duration, depot_open,
                depot_close, dist, service, earliest, latest, demand, blink, rng, scratch,
                start_tmp, lower, position, cand_delta, cand_code, latest_start,
            )  # fmt: skip
            if v >= 0:
                _insert(
                    r, v, i, j, routes, lengths, starts, n, capacity, max_ride, max_duration,
                    depot_open, depot_close, dist, service, earliest, latest, demand, scratch,
                    lower, position, where,
                )  # fmt: skip
        out_count = 0
        for r in range(n):
            if where[r] < 0:
                out_count += 1
        candidate = _total_cost(routes, lengths, dist) + penalty * out_count
        if candidate < current - temperature * math.log(1.0 - _rand(rng) + 1e-300):
            current = candidate
            if candidate < best_cost_box[0] - 1e-9:
                best_cost_box[0] = candidate
                best_routes[:, :] = routes
                best_lengths[:] = lengths
        else:
            routes[:, :] = saved_routes
            lengths[:] = saved_lengths
            starts[:, :] = saved_starts
            where[:] = saved_where
    return current


# --- the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DarpSolution:
    """Best routes found: per vehicle the node sequence and each stop's service start."""

    routes: tuple[tuple[int, ...], ...]
    starts: tuple[tuple[float, ...], ...]
    cost: float
    unserved: int
    iterations: int
    status: str


def _args(data: DarpData) -> tuple:
    return (
        data.n,
        data.capacity,
        data.max_ride,
        data.max_duration,
        data.depot_open,
        data.depot_close,
        data.dist,
        data.service,
        data.earliest,
        data.latest,
        data.demand,
    )


_COMPILED: list[bool] = []


def _compile() -> None:
    """Compile (or load from Numba's cache) the kernels once per process, on a two-request
    instance, so that compiling is not charged to a search's time limit."""
    if _COMPILED:
        return
    _COMPILED.append(True)
    dist = np.array([[0.0, 1, 2, 3, 4], [1, 0, 1, 2, 3], [2, 1, 0, 1, 2], [3, 2, 1, 0, 1],
                     [4, 3, 2, 1, 0]])  # fmt: skip
    tiny = DarpData(
        n=2, vehicles=1, capacity=2, max_ride=30.0, max_duration=480.0, depot_open=0.0,
        depot_close=480.0, dist=dist, service=np.ones(5), earliest=np.zeros(5),
        latest=np.full(5, 480.0), demand=np.array([0, 1, 1, -1, -1]),
        related=np.array([[0, 1], [1, 0]]),
    )  # fmt: skip
    ruin_recreate(tiny, 60.0, 0, 2, compile_first=False)


def ruin_recreate(
    data: DarpData,
    time_limit_s: float,
    seed: int = 0,
    iteration_limit: int | None = None,
    compile_first: bool = True,
) -> DarpSolution:
    """Best solution found in ``time_limit_s`` (wall clock) or ``iteration_limit`` iterations.

    With an iteration limit the temperature follows the iteration count, so the result
    depends only on the seed (unless the time limit stops the search first); without one it
    follows the clock.
    """
    if compile_first:
        _compile()
    started = time.monotonic()
    n, m = data.n, data.vehicles
    width = 2 * n + 2
    routes = np.zeros((m, width), dtype=np.int64)
    lengths = np.zeros(m, dtype=np.int64)
    starts = np.zeros((m, width), dtype=np.float64)
    where = np.full(n, -1, dtype=np.int64)
    best_routes = routes.copy()
    best_lengths = lengths.copy()
    best_box = np.array([math.inf])
    rng = np.array([np.uint64(0x9E3779B97F4A7C15) ^ np.uint64((seed * 2654435761 + 1) % 2**64)])
    for _ in range(8):
        _rand(rng)
    penalty = 20.0 * float(data.dist.max()) + 100.0
    args = _args(data)
    search_batch(
        routes, lengths, starts, where, best_routes, best_lengths, best_box, rng,
        0, 1.0, 1.0, penalty, *args, data.related, True,
    )  # fmt: skip
    served = int((where >= 0).sum())
    mean_arc = max(1e-6, (best_box[0] - penalty * (n - served)) / max(1, 2 * served + m))
    t_start, t_end = TEMPERATURE_START * mean_arc, TEMPERATURE_END * mean_arc
    done = 0
    batch = 50
    deadline = started + time_limit_s
    while True:
        now = time.monotonic()
        if now >= deadline or (iteration_limit is not None and done >= iteration_limit):
            break
        if iteration_limit is not None:
            batch = min(batch, iteration_limit - done)
            frac_from, frac_to = done / iteration_limit, (done + batch) / iteration_limit
        else:
            frac_from = (now - started) / time_limit_s
            frac_to = min(1.0, frac_from + BATCH_TARGET_S / time_limit_s)
        temp_from = t_start * (t_end / t_start) ** frac_from
        temp_to = t_start * (t_end / t_start) ** frac_to
        batch_started = time.monotonic()
        search_batch(
            routes, lengths, starts, where, best_routes, best_lengths, best_box, rng,
            batch, temp_from, temp_to, penalty, *args, data.related, False,
        )  # fmt: skip
        done += batch
        spent = time.monotonic() - batch_started
        if iteration_limit is None:
            remaining = deadline - time.monotonic()
            per_iteration = max(spent, 1e-6) / batch
            batch = int(max(1, min(BATCH_TARGET_S, remaining) / per_iteration))
    lower = np.empty(width + 2)
    position = np.empty(2 * n + 1, dtype=np.int64)
    out_routes, out_starts = [], []
    unserved = n
    cost = 0.0
    for v in range(m):
        k = int(best_lengths[v])
        nodes = best_routes[v, :k].copy()
        start = np.zeros(width + 2)
        ok = route_schedule(nodes, k, *args, start, lower, position)
        if not ok:
            raise RuntimeError(f"internal error: route {v} of the best solution is infeasible")
        unserved -= k // 2
        cost += _route_cost(nodes, k, data.dist)
        out_routes.append(tuple(int(x) for x in nodes))
        out_starts.append(tuple(float(x) for x in start[:k]))
    status = f"ruin and recreate, {done} iterations"
    return DarpSolution(tuple(out_routes), tuple(out_starts), cost, unserved, done, status)
