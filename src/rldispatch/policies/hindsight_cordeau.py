"""The hindsight solver on a static dial-a-ride instance (Cordeau 2006), with OR-Tools.

Every request served by one vehicle, ride pooling allowed, time windows, ride-time and
route-duration limits, minimising total distance. Float distances are scaled to integers,
travel times rounded up, so a schedule the solver accepts also holds in exact arithmetic.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np
from ortools.constraint_solver import pywrapcp

from rldispatch.policies.darp_search import darp_data, ruin_recreate
from rldispatch.policies.hindsight_result import HindsightResult, Stop, day_metrics
from rldispatch.policies.routing import solve_portfolio, vehicle_nodes
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.cordeau import CordeauInstance
from rldispatch.sim.metrics import DayMetrics

CORDEAU_SCALE = 1000
"""Solver integer units per distance (= time) unit on Cordeau instances."""
CORDEAU_FIRST_SOLUTIONS = ("LOCAL_CHEAPEST_INSERTION", "PARALLEL_CHEAPEST_INSERTION")
"""First-solution strategies :func:`solve_cordeau` tries when none is given."""
LIGHT_PAIR_RELOCATE_FROM_REQUESTS = 60
"""From this many requests on, the search uses OR-Tools' light pair relocation instead of the
full one. Profiled on a8-96 (20 s), the full operator made 3.0 million of the 3.0 million
neighbours (435 passed the filters, the time windows rejecting the rest) and never let guided
local search reach a local optimum; the light one cut the cost at 10-20 s by 1-5 % on six of
the nine instances of 60 to 96 requests tried (see docs/hindsight.md)."""


def _cordeau_points(instance: CordeauInstance) -> np.ndarray:
    """Node coordinates: depot, pickups 1..n, drop-offs n+1..2n."""
    return np.vstack(
        [np.asarray(instance.depot_xy)[None, :], instance.pickup_xy, instance.dropoff_xy]
    )


CORDEAU_METHODS = ("ruin_recreate", "ortools")
"""Searches :func:`solve_cordeau` offers; the first is the default."""


def solve_cordeau(
    instance: CordeauInstance,
    time_limit_s: float = 60.0,
    seed: int = 0,
    first_solutions: Sequence[str] = CORDEAU_FIRST_SOLUTIONS,
    reward: RewardConfig | None = None,
    method: str = "ruin_recreate",
    iteration_limit: int | None = None,
) -> HindsightResult:
    """Solve a static dial-a-ride instance, minimising total distance.

    ``reward``: the weights its figures (the simulator's metrics) are scored under (default:
    the defaults); the search minimises distance, as the published instances do.

    :param time_limit_s: wall-clock budget of the search.
    :param seed: the search's random seed (``ruin_recreate``); for ``ortools``, 0 numbers the
        requests in file order and any other value shuffles the order in which the solver
        sees them, which changes its tie-breaking (a cheap multi-start).
    :param first_solutions: OR-Tools first-solution strategies (``ortools`` only); with
        several, each gets a short greedy descent and the best one is improved by guided
        local search.
    :param method: ``ruin_recreate`` (:mod:`rldispatch.policies.darp_search`, compiled) or
        ``ortools`` (the routing solver with guided local search).
    :param iteration_limit: ``ruin_recreate`` only: stop after this many iterations (or at
        the time limit, whichever comes first); the result is then the same for a seed on
        any machine as long as the time limit is not what stops it.
    """
    if method not in CORDEAU_METHODS:
        raise ValueError(f"method must be one of {', '.join(CORDEAU_METHODS)}, got {method!r}")
    if iteration_limit is not None and iteration_limit < 0:
        raise ValueError(f"iteration_limit must be >= 0, got {iteration_limit}")
    if method == "ruin_recreate":
        return _solve_ruin_recreate(instance, time_limit_s, seed, iteration_limit, reward)
    started = time.monotonic()
    n = instance.n_requests
    m = instance.n_vehicles
    scale = CORDEAU_SCALE
    order = np.arange(n)
    if seed:
        order = np.random.default_rng(seed).permutation(n)
    # Solver node k (1..n) is request order[k-1]; node n+k is its drop-off.
    points = _cordeau_points(instance)
    node_point = np.concatenate([[0], 1 + order, 1 + n + order])
    xy = points[node_point]
    distance = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    service = np.concatenate(
        [[0.0], instance.pickup_service[order], instance.dropoff_service[order]]
    )
    cost_matrix = np.rint(distance * scale).astype(np.int64)
    travel_units = np.ceil(distance * scale).astype(np.int64)
    time_matrix = travel_units + np.rint(service * scale).astype(np.int64)[:, None]
    demand = np.concatenate([[0], instance.load[order], -instance.load[order]]).astype(np.int64)

    manager = pywrapcp.RoutingIndexManager(2 * n + 1, m, 0)
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()
    cost_callback = routing.RegisterTransitMatrix(cost_matrix.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_callback)
    time_callback = routing.RegisterTransitMatrix(time_matrix.tolist())
    horizon = int(math.ceil(max(instance.depot_window[1], instance.end_depot_window[1]) * scale))
    routing.AddDimension(time_callback, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    load_callback = routing.RegisterUnaryTransitVector(demand.tolist())
    routing.AddDimensionWithVehicleCapacity(load_callback, 0, [instance.capacity] * m, True, "load")

    ride_max = int(math.floor(instance.max_ride_time * scale))
    drop_penalty = int(10 * scale * (distance.max() + 1.0) * (2 * n + 1))
    for k in range(1, n + 1):
        request = order[k - 1]
        pickup = manager.NodeToIndex(k)
        dropoff = manager.NodeToIndex(n + k)
        routing.AddPickupAndDelivery(pickup, dropoff)
        solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(dropoff))
        solver.Add(routing.ActiveVar(pickup) == routing.ActiveVar(dropoff))
        routing.AddDisjunction([pickup], drop_penalty)
        routing.AddDisjunction([dropoff], drop_penalty)
        pickup_time = time_dim.CumulVar(pickup)
        dropoff_time = time_dim.CumulVar(dropoff)
        service_units = int(round(instance.pickup_service[request] * scale))
        solver.Add(dropoff_time - pickup_time <= ride_max + service_units)
        # Windows, tightened with what the ride-time limit and the direct trip imply.
        direct = int(time_matrix[k, n + k])
        pick_lo = math.ceil(instance.pickup_window[request, 0] * scale)
        pick_hi = math.floor(instance.pickup_window[request, 1] * scale)
        drop_lo = math.ceil(instance.dropoff_window[request, 0] * scale)
        drop_hi = math.floor(instance.dropoff_window[request, 1] * scale)
        pick_lo = max(pick_lo, drop_lo - ride_max - service_units)
        pick_hi = min(pick_hi, drop_hi - direct)
        drop_lo = max(drop_lo, pick_lo + direct)
        drop_hi = min(drop_hi, pick_hi + ride_max + service_units)
        pickup_time.SetRange(int(pick_lo), int(max(pick_lo, pick_hi)))
        dropoff_time.SetRange(int(drop_lo), int(max(drop_lo, drop_hi)))
    span_max = int(math.floor(instance.max_route_duration * scale))
    for vehicle in range(m):
        time_dim.SetSpanUpperBoundForVehicle(span_max, vehicle)
        start = time_dim.CumulVar(routing.Start(vehicle))
        end = time_dim.CumulVar(routing.End(vehicle))
        start.SetRange(
            math.ceil(instance.depot_window[0] * scale),
            math.floor(instance.depot_window[1] * scale),
        )
        end.SetRange(
            math.ceil(instance.end_depot_window[0] * scale),
            math.floor(instance.end_depot_window[1] * scale),
        )
        routing.AddVariableMaximizedByFinalizer(start)
        routing.AddVariableMinimizedByFinalizer(end)

    solution, status = solve_portfolio(
        routing,
        time_limit_s,
        first_solutions,
        light_pair_relocate=n >= LIGHT_PAIR_RELOCATE_FROM_REQUESTS,
    )
    elapsed = time.monotonic() - started
    vehicles = tuple(f"v{k + 1}" for k in range(m))
    if solution is None:
        return HindsightResult(
            name=instance.name,
            feasible=False,
            cost=math.inf,
            metrics=None,
            routes=tuple(() for _ in range(m)),
            vehicles=vehicles,
            dropped=tuple(str(i + 1) for i in range(n)),
            solve_time_s=elapsed,
            status=status,
        )
    routes = []
    served = np.zeros(n, dtype=bool)
    for nodes in vehicle_nodes(routing, manager, solution):
        stops = []
        for node in nodes:
            is_pickup = node <= n
            request = int(order[(node if is_pickup else node - n) - 1])
            served[request] = True
            time_units = solution.Min(time_dim.CumulVar(manager.NodeToIndex(node)))
            stops.append(
                Stop(str(request + 1), "pickup" if is_pickup else "dropoff", time_units / scale)
            )
        routes.append(tuple(stops))
    cost = _route_distance(instance, routes)
    dropped = tuple(str(i + 1) for i in np.flatnonzero(~served))
    return HindsightResult(
        name=instance.name,
        feasible=not dropped,
        cost=cost,
        metrics=cordeau_route_metrics(instance, routes, reward or RewardConfig()),
        routes=tuple(routes),
        vehicles=vehicles,
        dropped=dropped,
        solve_time_s=elapsed,
        status=status,
        objective=solution.ObjectiveValue() / scale,
    )


def _solve_ruin_recreate(
    instance: CordeauInstance,
    time_limit_s: float,
    seed: int,
    iteration_limit: int | None,
    reward: RewardConfig | None,
) -> HindsightResult:
    started = time.monotonic()
    n = instance.n_requests
    solution = ruin_recreate(darp_data(instance), time_limit_s, seed, iteration_limit)
    routes = []
    served = np.zeros(n, dtype=bool)
    for nodes, starts in zip(solution.routes, solution.starts, strict=True):
        stops = []
        for node, start_min in zip(nodes, starts, strict=True):
            is_pickup = node <= n
            request = (node if is_pickup else node - n) - 1
            served[request] = True
            stops.append(Stop(str(request + 1), "pickup" if is_pickup else "dropoff", start_min))
        routes.append(tuple(stops))
    dropped = tuple(str(i + 1) for i in np.flatnonzero(~served))
    cost = _route_distance(instance, routes)
    return HindsightResult(
        name=instance.name,
        feasible=not dropped,
        cost=cost,
        metrics=cordeau_route_metrics(instance, routes, reward or RewardConfig()),
        routes=tuple(routes),
        vehicles=tuple(f"v{k + 1}" for k in range(instance.n_vehicles)),
        dropped=dropped,
        solve_time_s=time.monotonic() - started,
        status=solution.status,
        objective=solution.cost,
    )


def _route_distance(instance: CordeauInstance, routes: Sequence[Sequence[Stop]]) -> float:
    depot = np.asarray(instance.depot_xy, dtype=np.float64)
    total = 0.0
    for route in routes:
        if not route:
            continue
        path = [depot]
        for stop in route:
            request = int(stop.booking) - 1
            path.append(
                instance.pickup_xy[request]
                if stop.kind == "pickup"
                else instance.dropoff_xy[request]
            )
        path.append(depot)
        legs = np.diff(np.asarray(path), axis=0)
        total += float(np.hypot(legs[:, 0], legs[:, 1]).sum())
    return total


def cordeau_route_metrics(
    instance: CordeauInstance, routes: Sequence[Sequence[Stop]], reward: RewardConfig
) -> DayMetrics:
    """The simulator's figures for the instance as :meth:`CordeauInstance.to_scenario` sees it:
    the loaded km, occupancy, shared rides and ride times of the routes as driven, rides
    shared (one unit is one km and one minute)."""
    scenario = instance.to_scenario()
    n = instance.n_requests
    pickup_min = np.zeros(n)
    picked_done_min = np.zeros(n)
    dropoff_min = np.full(n, np.nan)
    served = np.zeros(n, dtype=bool)
    shared = np.zeros(n, dtype=bool)
    rides = np.zeros(instance.n_vehicles, dtype=np.int64)
    loaded_km = passenger_km = 0.0
    depot = np.asarray(instance.depot_xy, dtype=np.float64)
    for vehicle, route in enumerate(routes):
        here = depot
        aboard: list[int] = []
        for stop in route:
            request = int(stop.booking) - 1
            pickup = stop.kind == "pickup"
            there = instance.pickup_xy[request] if pickup else instance.dropoff_xy[request]
            leg_km = float(np.hypot(*(there - here)))
            if aboard:
                loaded_km += leg_km
                passenger_km += leg_km * float(instance.load[aboard].sum())
            here = there
            if pickup:
                pickup_min[request] = stop.time_min
                picked_done_min[request] = stop.time_min + float(instance.pickup_service[request])
                served[request] = True
                rides[vehicle] += 1
                if aboard:
                    shared[aboard] = True
                    shared[request] = True
                aboard.append(request)
            else:
                dropoff_min[request] = stop.time_min
                if request in aboard:
                    aboard.remove(request)
    requested = np.asarray([booking.requested_min for booking in scenario.bookings])
    direct = instance.direct_distance()
    dropped = np.isfinite(dropoff_min) & served & (direct > 0)
    ride = (dropoff_min[dropped] - picked_done_min[dropped]) / direct[dropped]
    return dataclasses.replace(
        day_metrics(
            requested,
            pickup_min,
            served,
            _route_distance(instance, routes),
            loaded_km,
            rides,
            reward,
        ),
        occupancy=passenger_km / loaded_km if loaded_km else 0.0,
        shared_ride_share=float(shared[served].mean()) if served.any() else 0.0,
        ride_time_ratio=float(ride.mean()) if ride.size else 0.0,
    )
