"""The hindsight solver: the best plan of a day when every booking is known in advance.

Two entry points share the OR-Tools routing code (``ortools.constraint_solver``):

- :func:`solve_cordeau` solves a static dial-a-ride instance (Cordeau): every request served
  by one vehicle, ride pooling allowed, time windows, ride-time and route-duration limits,
  minimising total distance.
- :func:`solve_scenario` solves one of our scenarios with the simulator's rules (one booking at
  a time per driver, the same travel model), maximising the day's reward: bookings are
  optional at the price of the reward they would bring.

Float times and distances are scaled to integers for the solver, travel times rounded up, so
a schedule the solver accepts also holds in exact arithmetic. The reported times, costs and
metrics are recomputed from the routes with exact travel times.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Scenario
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.cordeau import CordeauInstance
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.travel import TravelModel

StopKind = Literal["pickup", "dropoff"]

CORDEAU_SCALE = 1000
"""Solver integer units per distance (= time) unit on Cordeau instances."""
SCENARIO_TIME_SCALE = 100
"""Solver integer units per minute on scenarios."""
SCENARIO_COST_SCALE = 100_000
"""Solver integer units per reward unit on scenarios."""
CORDEAU_FIRST_SOLUTIONS = ("LOCAL_CHEAPEST_INSERTION", "PARALLEL_CHEAPEST_INSERTION")
"""First-solution strategies :func:`solve_cordeau` tries when none is given."""
FIRST_SOLUTION_SHARE = 0.15
"""Share of the time limit spent comparing first-solution strategies (greedy descent each)."""
GLS_LAMBDA = 0.5
"""Guided local search penalty weight (OR-Tools' default is 0.1; 0.5 escapes the tight
local optima of the larger Cordeau instances more often)."""
TIME_TOLERANCE_MIN = 1e-7


@dataclass(frozen=True)
class Stop:
    """One stop of a route: the booking, pickup or drop-off, and when service starts."""

    booking: str
    kind: StopKind
    time_min: float

    def to_dict(self) -> dict[str, Any]:
        return {"booking": self.booking, "kind": self.kind, "time_min": self.time_min}


@dataclass(frozen=True)
class HindsightResult:
    """What the hindsight solver found.

    ``cost`` is the total distance in the scenario's units (km, or Euclidean units on a
    Cordeau instance); ``routes[k]`` are the stops of vehicle ``vehicles[k]``, in order;
    ``dropped`` are the bookings left unserved (cancelled).
    """

    name: str
    feasible: bool
    cost: float
    metrics: DayMetrics | None
    routes: tuple[tuple[Stop, ...], ...]
    vehicles: tuple[str, ...]
    dropped: tuple[str, ...]
    solve_time_s: float
    status: str
    objective: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vehicles_used(self) -> int:
        return sum(1 for route in self.routes if route)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: feasible, cost, metrics and routes, plus how the solve went."""
        return {
            "name": self.name,
            "feasible": self.feasible,
            "cost": self.cost if math.isfinite(self.cost) else None,
            "metrics": None if self.metrics is None else self.metrics.as_dict(),
            "routes": [
                {"vehicle": vehicle, "stops": [stop.to_dict() for stop in route]}
                for vehicle, route in zip(self.vehicles, self.routes, strict=True)
            ],
            "dropped": list(self.dropped),
            "vehicles_used": self.vehicles_used,
            "objective": self.objective,
            "solve_time_s": self.solve_time_s,
            "status": self.status,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"Hindsight solution of {self.name}",
            "=" * (24 + len(self.name)),
            f"# routes: {self.vehicles_used} of {len(self.routes)}",
            f"# dropped: {len(self.dropped)}",
            f"   feasible: {self.feasible}",
            f"       cost: {self.cost:.2f}",
            f"     status: {self.status}",
            f" solve time: {self.solve_time_s:.2f} s",
        ]
        if self.metrics is not None:
            metrics = self.metrics
            lines += [
                "",
                "Metrics",
                "-------",
                f"         reward: {metrics.reward:.2f}",
                f"completion rate: {metrics.completion_rate:.3f}"
                f" ({metrics.served}/{metrics.bookings})",
                f"    late pickup: {metrics.late_pickup_rate:.3f}",
                f"    distance km: {metrics.distance_km:.2f} (empty {metrics.empty_km:.2f})",
                f"   pickup delay: mean {metrics.pickup_delay_mean_min:.2f} min,"
                f" p95 {metrics.pickup_delay_p95_min:.2f} min",
                f"       load gap: {metrics.load_gap}",
            ]
        lines += ["", "Routes", "------"]
        for vehicle, route in zip(self.vehicles, self.routes, strict=True):
            if route:
                visits = " ".join(
                    f"{'+' if stop.kind == 'pickup' else '-'}{stop.booking}" for stop in route
                )
                lines.append(f"{vehicle}: {visits}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


# --- shared routing code --------------------------------------------------------------------


def _search_parameters(
    time_limit_s: float, first_solution: str, metaheuristic: str = "GUIDED_LOCAL_SEARCH"
) -> Any:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, first_solution
    )
    params.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic
    )
    params.guided_local_search_lambda_coefficient = GLS_LAMBDA
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    return params


def _status_name(routing: Any) -> str:
    return routing_enums_pb2.RoutingSearchStatus.Value.Name(routing.status())


def _solve_portfolio(
    routing: Any, time_limit_s: float, first_solutions: Sequence[str]
) -> tuple[Any, str]:
    """Best first solution (each polished by greedy descent), then guided local search.

    With a single strategy the whole time limit goes to guided local search from it.
    """
    deadline = time.monotonic() + time_limit_s
    best = None
    if len(first_solutions) == 1:
        params = _search_parameters(time_limit_s, first_solutions[0])
        return routing.SolveWithParameters(params), _status_name(routing)
    probe_s = time_limit_s * FIRST_SOLUTION_SHARE / len(first_solutions)
    for strategy in first_solutions:
        params = _search_parameters(probe_s, strategy, "GREEDY_DESCENT")
        solution = routing.SolveWithParameters(params)
        if solution is not None and (best is None or solution.ObjectiveValue() < best[0]):
            best = (solution.ObjectiveValue(), routing.solver().Assignment(solution))
    remaining_s = max(0.1, deadline - time.monotonic())
    params = _search_parameters(remaining_s, first_solutions[0])
    if best is None:
        return routing.SolveWithParameters(params), _status_name(routing)
    solution = routing.SolveFromAssignmentWithParameters(best[1], params)
    return solution, _status_name(routing)


def _vehicle_nodes(routing: Any, manager: Any, solution: Any) -> list[list[int]]:
    """The visited nodes of each vehicle, depots excluded."""
    routes = []
    for vehicle in range(manager.GetNumberOfVehicles()):
        index = solution.Value(routing.NextVar(routing.Start(vehicle)))
        nodes = []
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(nodes)
    return routes


def _day_metrics(
    requested_min: np.ndarray,
    pickup_min: np.ndarray,
    served: np.ndarray,
    distance_km: float,
    loaded_km: float,
    rides_per_driver: np.ndarray,
    reward: RewardConfig,
) -> DayMetrics:
    """The simulator's figures of a day, from a finished schedule."""
    n_bookings = int(requested_min.size)
    n_served = int(served.sum())
    pickups = pickup_min[served]
    requested = requested_min[served]
    delays = np.maximum(pickups - requested, 0.0)
    late = int(np.sum(pickups > requested + LATE_AFTER_REQUESTED_MIN))
    cancelled = n_bookings - n_served
    rides = np.asarray(rides_per_driver, dtype=np.int64)
    return DayMetrics(
        reward=float(
            reward.day_reward(
                assigned=n_served,
                late_pickups=late,
                cancelled=cancelled,
                distance_km=distance_km,
                rides_per_driver=rides,
            )
        ),
        completion_rate=n_served / max(n_bookings, 1),
        late_pickup_rate=late / n_served if n_served else 0.0,
        cancelled=cancelled,
        distance_km=float(distance_km),
        empty_km=max(float(distance_km) - float(loaded_km), 0.0),
        pickup_delay_mean_min=float(delays.mean()) if n_served else 0.0,
        pickup_delay_p95_min=float(np.percentile(delays, 95)) if n_served else 0.0,
        load_gap=int(rides.max() - rides.min()) if rides.size else 0,
        decisions=0,
        bookings=n_bookings,
        served=n_served,
    )


# --- Cordeau dial-a-ride --------------------------------------------------------------------


def _cordeau_points(instance: CordeauInstance) -> np.ndarray:
    """Node coordinates: depot, pickups 1..n, drop-offs n+1..2n."""
    return np.vstack(
        [np.asarray(instance.depot_xy)[None, :], instance.pickup_xy, instance.dropoff_xy]
    )


def solve_cordeau(
    instance: CordeauInstance,
    time_limit_s: float = 60.0,
    seed: int = 0,
    first_solutions: Sequence[str] = CORDEAU_FIRST_SOLUTIONS,
) -> HindsightResult:
    """Solve a static dial-a-ride instance, minimising total distance.

    :param time_limit_s: wall-clock budget of the search.
    :param seed: 0 numbers the requests in file order; any other value shuffles the order in
        which the solver sees them, which changes its tie-breaking (a cheap multi-start).
    :param first_solutions: OR-Tools first-solution strategies; with several, each gets a
        short greedy descent and the best one is improved by guided local search.
    """
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

    solution, status = _solve_portfolio(routing, time_limit_s, first_solutions)
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
    for nodes in _vehicle_nodes(routing, manager, solution):
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
        metrics=_cordeau_metrics(instance, routes),
        routes=tuple(routes),
        vehicles=vehicles,
        dropped=dropped,
        solve_time_s=elapsed,
        status=status,
        objective=solution.ObjectiveValue() / scale,
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


def _cordeau_metrics(instance: CordeauInstance, routes: Sequence[Sequence[Stop]]) -> DayMetrics:
    """The simulator's figures for the instance as :meth:`CordeauInstance.to_scenario` sees it."""
    scenario = instance.to_scenario()
    n = instance.n_requests
    pickup_min = np.zeros(n)
    served = np.zeros(n, dtype=bool)
    rides = np.zeros(instance.n_vehicles, dtype=np.int64)
    for vehicle, route in enumerate(routes):
        for stop in route:
            if stop.kind == "pickup":
                request = int(stop.booking) - 1
                pickup_min[request] = stop.time_min
                served[request] = True
                rides[vehicle] += 1
    requested = np.asarray([booking.requested_min for booking in scenario.bookings])
    loaded_km = float(instance.direct_distance()[served].sum())
    return _day_metrics(
        requested,
        pickup_min,
        served,
        _route_distance(instance, routes),
        loaded_km,
        rides,
        RewardConfig(),
    )


# --- scenarios (the simulator's rules) ------------------------------------------------------


def solve_scenario(
    scenario: Scenario,
    time_limit_s: float = 30.0,
    reward: RewardConfig | None = None,
    seed: int = 0,
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION",
) -> HindsightResult:
    """The best day the simulator allows when every booking is known from the start.

    As in the simulator, a driver serves one booking at a time (drive to the pickup, wait for
    the window, pick up, ride, drop off), a leg's speed is that of the booking it leads to,
    every pickup starts inside its window, a driver's work ends (last drop-off done) by the
    end of its shift, and a booking fits a driver when its load is within the capacity.
    Drivers start at their start point and may end anywhere.

    The objective, in reward units: ``km_cost`` per km driven; a skipped booking costs
    ``assignment_bonus + cancellation_penalty``; a late pickup (more than 5 minutes after the
    requested time) costs up to ``late_pickup_penalty``, linearly in the minutes late so that
    the latest possible pickup costs the full penalty. Metrics and reward are then recomputed
    exactly from the schedule.

    :param seed: 0 numbers the bookings in scenario order; another value shuffles the order
        the solver sees them in (changes its tie-breaking).
    """
    reward = reward or RewardConfig()
    started = time.monotonic()
    travel = TravelModel(scenario)
    bookings, drivers = scenario.bookings, scenario.drivers
    n_bookings, n_drivers = len(bookings), len(drivers)
    order = np.arange(n_bookings)
    if seed:
        order = np.random.default_rng(seed).permutation(n_bookings)
    booking_list = [bookings[i] for i in order]

    requested = np.asarray([b.requested_min for b in booking_list], dtype=np.float64)
    earliest = np.asarray([b.earliest_min for b in booking_list], dtype=np.float64)
    latest = np.asarray([b.latest_min for b in booking_list], dtype=np.float64)
    service = np.asarray([b.service_min for b in booking_list], dtype=np.float64)
    load = np.asarray([b.load for b in booking_list], dtype=np.int64)
    pickup_vec = travel.embed(np.asarray([b.pickup for b in booking_list]).reshape(-1, 2))
    dropoff_vec = travel.embed(np.asarray([b.dropoff for b in booking_list]).reshape(-1, 2))
    start_vec = travel.embed(np.asarray([d.start for d in drivers]).reshape(-1, 2))
    shift_start = np.asarray([d.shift[0] for d in drivers], dtype=np.float64)
    shift_end = np.asarray([d.shift[1] for d in drivers], dtype=np.float64)
    capacity = np.asarray([d.capacity for d in drivers], dtype=np.int64)
    minutes_per_km = travel.minutes_per_km(requested)
    ride_km = travel.distance_km(pickup_vec, dropoff_vec)
    busy_min = 2.0 * service + ride_km * minutes_per_km

    # Nodes: bookings 0..B-1 (a node is the whole ride), then driver starts, then one end.
    # From-node positions: booking drop-offs then driver starts; to-node positions: pickups.
    from_vec = np.vstack([dropoff_vec, start_vec]) if n_bookings else start_vec
    leg_km = travel.distance_km(from_vec[:, None, :], pickup_vec[None, :, :])
    n_nodes = n_bookings + n_drivers + 1
    end_node = n_nodes - 1
    time_scale, cost_scale = SCENARIO_TIME_SCALE, SCENARIO_COST_SCALE
    time_units = np.zeros((n_nodes, n_nodes), dtype=np.int64)
    km_units = np.zeros((n_nodes, n_nodes), dtype=np.int64)
    leg_min = leg_km * minutes_per_km[None, :]
    busy_from = np.concatenate([busy_min, np.zeros(n_drivers)])
    time_units[: n_bookings + n_drivers, :n_bookings] = np.ceil(
        (busy_from[:, None] + leg_min) * time_scale
    )
    time_units[:n_bookings, end_node] = np.ceil(busy_min * time_scale)
    km_cost_units = reward.km_cost * cost_scale
    km_units[: n_bookings + n_drivers, :n_bookings] = np.rint(
        (leg_km + ride_km[None, :]) * km_cost_units
    )

    manager = pywrapcp.RoutingIndexManager(
        n_nodes,
        n_drivers,
        [n_bookings + k for k in range(n_drivers)],
        [end_node] * n_drivers,
    )
    routing = pywrapcp.RoutingModel(manager)
    cost_callback = routing.RegisterTransitMatrix(km_units.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_callback)
    time_callback = routing.RegisterTransitMatrix(time_units.tolist())
    horizon = int(
        math.ceil(
            max(scenario.horizon_min, float(shift_end.max()), float(latest.max(initial=0)))
            * time_scale
        )
        + 1
    )
    routing.AddDimension(time_callback, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")

    drop_penalty = int(round((reward.assignment_bonus + reward.cancellation_penalty) * cost_scale))
    impossible = []
    for k in range(n_bookings):
        index = manager.NodeToIndex(k)
        routing.AddDisjunction([index], drop_penalty)
        too_small = [v for v in range(n_drivers) if capacity[v] < load[k]]
        lo = math.ceil(earliest[k] * time_scale)
        hi = math.floor(latest[k] * time_scale)
        if len(too_small) == n_drivers or hi < lo:
            impossible.append(index)
            continue
        if too_small:
            routing.VehicleVar(index).RemoveValues(too_small)
        time_dim.CumulVar(index).SetRange(lo, hi)
        late_after = requested[k] + LATE_AFTER_REQUESTED_MIN
        late_span_min = latest[k] - late_after
        if reward.late_pickup_penalty > 0 and late_span_min > 0:
            per_minute = reward.late_pickup_penalty / max(late_span_min, 1.0)
            coefficient = max(1, int(round(per_minute * cost_scale / time_scale)))
            time_dim.SetCumulVarSoftUpperBound(
                index, int(math.floor(late_after * time_scale)), coefficient
            )
    for index in impossible:
        routing.solver().Add(routing.ActiveVar(index) == 0)
    for vehicle in range(n_drivers):
        start = time_dim.CumulVar(routing.Start(vehicle))
        end = time_dim.CumulVar(routing.End(vehicle))
        start.SetRange(math.ceil(shift_start[vehicle] * time_scale), horizon)
        end.SetMax(math.floor(shift_end[vehicle] * time_scale))

    solution, status = _solve_portfolio(routing, time_limit_s, (first_solution,))
    elapsed = time.monotonic() - started
    vehicles = tuple(d.id for d in drivers)
    original_ids = [b.id for b in bookings]
    if solution is None:
        return HindsightResult(
            name=scenario.name,
            feasible=False,
            cost=math.inf,
            metrics=None,
            routes=tuple(() for _ in range(n_drivers)),
            vehicles=vehicles,
            dropped=tuple(original_ids),
            solve_time_s=elapsed,
            status=status,
        )

    # Exact schedule: each driver as early as it can, as the simulator does.
    served = np.zeros(n_bookings, dtype=bool)
    pickup_min = np.zeros(n_bookings)
    rides = np.zeros(n_drivers, dtype=np.int64)
    distance_km = 0.0
    notes = []
    routes = []
    for vehicle, nodes in enumerate(_vehicle_nodes(routing, manager, solution)):
        free_min = shift_start[vehicle]
        from_row = n_bookings + vehicle
        stops = []
        for k in nodes:
            start_min = max(free_min + leg_min[from_row, k], earliest[k])
            if start_min > latest[k] + TIME_TOLERANCE_MIN:
                notes.append(f"booking {booking_list[k].id}: pickup after its window closes")
            served[k] = True
            pickup_min[k] = start_min
            rides[vehicle] += 1
            distance_km += float(leg_km[from_row, k] + ride_km[k])
            dropoff_min = start_min + service[k] + busy_min[k] - 2.0 * service[k]
            stops.append(Stop(booking_list[k].id, "pickup", float(start_min)))
            stops.append(Stop(booking_list[k].id, "dropoff", float(dropoff_min)))
            free_min = start_min + busy_min[k]
            from_row = k
        if free_min > shift_end[vehicle] + TIME_TOLERANCE_MIN and nodes:
            notes.append(f"driver {drivers[vehicle].id}: works past the end of its shift")
        routes.append(tuple(stops))
    metrics = _day_metrics(
        requested,
        pickup_min,
        served,
        distance_km,
        float(ride_km[served].sum()),
        rides,
        reward,
    )
    dropped_set = {booking_list[k].id for k in np.flatnonzero(~served)}
    return HindsightResult(
        name=scenario.name,
        feasible=not notes,
        cost=distance_km,
        metrics=metrics,
        routes=tuple(routes),
        vehicles=vehicles,
        dropped=tuple(i for i in original_ids if i in dropped_set),
        solve_time_s=elapsed,
        status=status,
        objective=solution.ObjectiveValue() / cost_scale,
        notes=tuple(notes),
    )
