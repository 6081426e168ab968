"""The hindsight plan of a day of stops: shared rides, places by kind, ride limits, breaks.

Every booking known from the start, as an OR-Tools pickup-and-delivery model: a pickup node
and a drop-off node per booking, served by one vehicle, pickup first, both or neither (a
skipped booking costs ``assignment_bonus + cancellation_penalty``); one capacity dimension
per kind of place; a pickup inside its window; a ride (end of the pickup to the start of the
drop-off) within the booking's ``max_ride_min``, a constraint on the pair's times; a driver's
breaks as break intervals of its route within their windows; every route done by the end of
its shift. Each driver starts at its start point, no earlier than its shift, and ends
anywhere. Travel to a stop is at the speed of that stop's booking, as the simulator drives.
The objective is the day's reward, negated: ``km_cost`` per km, the skipped bookings, and
lateness charged linearly (``late_pickup_penalty`` per 10 minutes past ``requested + 5``),
the balance bonus left out.

The search starts from the day cheapest insertion plays, and the result is never worse than
that day by the simulator's reward. The plan found is then played by
the simulator itself: each route, with its breaks where nobody is on board, becomes the
driver's plan of stops
(:class:`rldispatch.sim.stop_simulator.StopDaySimulator`) and the day is finished there, so
its figures are the simulator's and :func:`rldispatch.sim.validator.check_played_day` checks
it. The model lets a break fall with passengers on board and may delay a pickup to shorten a
ride where the simulator picks up as early as it can; a booking whose stops the simulator
cannot keep is taken out of the plan (a note names it). When the search finds no plan or a
plan worse than cheapest insertion's day by the simulator's reward, that day stands and a
note says so. Times are scaled to integers rounding travel up.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, PLACE_KINDS, Scenario
from rldispatch.policies.hindsight_result import HindsightResult, Stop
from rldispatch.policies.routing import search_parameters, status_name, vehicle_nodes
from rldispatch.policies.stop_units import COST_SCALE, LATE_SPREAD_MIN, SLACK_UNITS, TIME_SCALE
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import ASSIGNED, SERVED
from rldispatch.sim.stop_kernels import BREAK, DROPOFF, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator
from rldispatch.sim.validator import check_played_day


def solve_stop_scenario(
    scenario: Scenario,
    time_limit_s: float = 30.0,
    reward: RewardConfig | None = None,
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION",
) -> HindsightResult:
    """The best plan found in ``time_limit_s`` of a day of stops (see the module docstring)."""
    reward = reward or RewardConfig()
    started = time.monotonic()
    sim = StopDaySimulator(scenario)
    n, m = sim.n_bookings, sim.n_drivers
    # Nodes: 0 the shared end, 1..m the drivers' starts, the pickups, then the drop-offs.
    pickup_node = 1 + m + np.arange(n)
    dropoff_node = 1 + m + n + np.arange(n)
    n_nodes = 1 + m + 2 * n
    vec = np.concatenate(
        [
            np.zeros((1, sim.pickup_vec.shape[1])),
            sim.driver_start_vec,
            sim.pickup_vec,
            sim.dropoff_vec,
        ]
    )
    booking_of = np.concatenate([np.full(1 + m, -1), np.arange(n), np.arange(n)])
    service = np.concatenate([np.zeros(1 + m), sim.service_min, sim.service_min])
    km = sim.travel.distance_km(vec[:, None, :], vec[None, :, :])
    km[:, 0] = 0.0
    km[0, :] = 0.0
    pace_km = km
    if sim.travel.on_roads:
        pace_km = sim.travel.pace_km(vec[:, None, :], vec[None, :, :])
        pace_km[:, 0] = 0.0
        pace_km[0, :] = 0.0
    pace = np.where(booking_of >= 0, sim.minutes_per_km[np.maximum(booking_of, 0)], 0.0)
    travel_min = pace_km * pace[None, :]
    transit = np.ceil((service[:, None] + travel_min) * TIME_SCALE).astype(np.int64)
    arc_cost = np.round(km * reward.km_cost * COST_SCALE).astype(np.int64)
    service_units = np.ceil(service * TIME_SCALE).astype(np.int64)

    manager = pywrapcp.RoutingIndexManager(n_nodes, m, list(range(1, m + 1)), [0] * m)
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()

    def cost_callback(from_index: int, to_index: int) -> int:
        return int(arc_cost[manager.IndexToNode(from_index), manager.IndexToNode(to_index)])

    def time_callback(from_index: int, to_index: int) -> int:
        return int(transit[manager.IndexToNode(from_index), manager.IndexToNode(to_index)])

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(cost_callback))
    time_index = routing.RegisterTransitCallback(time_callback)
    horizon = int(math.ceil(max(sim.horizon_min, float(sim.shift_end_min.max())) * TIME_SCALE))
    horizon += SLACK_UNITS
    routing.AddDimension(time_index, horizon, horizon, False, "time")
    clock = routing.GetDimensionOrDie("time")
    no_demand = np.zeros(0)
    demands = [
        np.concatenate([np.zeros(1 + m), loads, -loads, no_demand])
        for loads in sim.load_by_kind.T.astype(np.float64)
    ]
    capacities = [sim.capacity_by_kind[:, kind] for kind in range(len(PLACE_KINDS))]
    # One more dimension counts the bookings on board: at most one without shared rides.
    demands.append(np.concatenate([np.zeros(1 + m), np.ones(n), -np.ones(n), no_demand]))
    capacities.append(np.full(m, n + 1 if scenario.shared_rides else 1))
    for name, demand, capacity in zip((*PLACE_KINDS, "bookings"), demands, capacities, strict=True):

        def load_callback(index: int, demand: np.ndarray = demand) -> int:
            return int(demand[manager.IndexToNode(index)])

        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitCallback(load_callback),
            0,
            [int(c) for c in capacity],
            True,
            name,
        )
    for driver in range(m):
        start, end = routing.Start(driver), routing.End(driver)
        low = int(math.ceil(sim.shift_start_min[driver] * TIME_SCALE))
        high = int(math.floor(sim.shift_end_min[driver] * TIME_SCALE)) + SLACK_UNITS
        clock.CumulVar(start).SetRange(low, high)
        clock.CumulVar(end).SetRange(low, high)
        _add_breaks(solver, clock, sim, driver, service_units)
    skip_penalty = int(round((reward.assignment_bonus + reward.cancellation_penalty) * COST_SCALE))
    late_per_unit = max(
        1, int(round(reward.late_pickup_penalty * COST_SCALE / (LATE_SPREAD_MIN * TIME_SCALE)))
    )
    for booking in range(n):
        pickup = manager.NodeToIndex(int(pickup_node[booking]))
        dropoff = manager.NodeToIndex(int(dropoff_node[booking]))
        routing.AddPickupAndDelivery(pickup, dropoff)
        solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(dropoff))
        solver.Add(clock.CumulVar(pickup) <= clock.CumulVar(dropoff))
        routing.AddDisjunction([pickup, dropoff], max(skip_penalty, 1), 2)
        low = int(math.ceil(sim.earliest_min[booking] * TIME_SCALE))
        high = int(math.floor(sim.latest_min[booking] * TIME_SCALE)) + SLACK_UNITS
        if high < low:
            high = low
        clock.CumulVar(pickup).SetRange(low, high)
        limit = sim.max_ride_limit_min[booking]
        if np.isfinite(limit):
            solver.Add(
                clock.CumulVar(dropoff) - clock.CumulVar(pickup)
                <= int(
                    service_units[pickup_node[booking]]
                    + math.floor(limit * TIME_SCALE)
                    + SLACK_UNITS
                )
            )
        on_time = int(
            math.floor((sim.requested_min[booking] + LATE_AFTER_REQUESTED_MIN) * TIME_SCALE)
        )
        clock.SetCumulVarSoftUpperBound(pickup, on_time, late_per_unit)
        for driver in np.flatnonzero(~sim.fits[:, booking]).tolist():
            routing.VehicleVar(pickup).RemoveValue(driver)
    node_of = {PICKUP: pickup_node, DROPOFF: dropoff_node}
    warm = _insertion_routes(scenario)
    params = search_parameters(
        max(0.1, time_limit_s - (time.monotonic() - started)), first_solution
    )
    start_routes = [
        [int(node_of[kind][ref]) for kind, ref in route if kind != BREAK] for route in warm
    ]
    routing.CloseModelWithParameters(params)
    initial = routing.ReadAssignmentFromRoutes(
        [[manager.NodeToIndex(node) for node in route] for route in start_routes], True
    )
    if initial is not None:
        solution = routing.SolveFromAssignmentWithParameters(initial, params)
    else:
        solution = routing.SolveWithParameters(params)
    status = status_name(routing) + ("" if initial is not None else " (no warm start)")
    elapsed = time.monotonic() - started
    if solution is None:
        return _fallback(scenario, warm, reward, elapsed, status, "the search found no plan")
    routes = []
    for nodes in vehicle_nodes(routing, manager, solution):
        routes.append(
            [(PICKUP if node < 1 + m + n else DROPOFF, int(booking_of[node])) for node in nodes]
        )
    result = _play(scenario, sim, routes, reward, elapsed, status, solution.ObjectiveValue())
    if result.feasible:
        warm_day = _play(
            scenario, StopDaySimulator(scenario), warm, reward, elapsed, status, None, placed=True
        )
        if warm_day.metrics.reward > result.metrics.reward:
            note = "the search's plan was worse than cheapest insertion's day, which stands"
            return dataclasses.replace(warm_day, notes=(note, *warm_day.notes))
        return result
    reason = f"the search's plan did not replay in the simulator ({result.notes[0]})"
    return _fallback(scenario, warm, reward, elapsed, status, reason)


def _fallback(
    scenario: Scenario,
    warm: list[list[tuple[int, int]]],
    reward: RewardConfig,
    elapsed: float,
    status: str,
    reason: str,
) -> HindsightResult:
    """Cheapest insertion's day (the warm start), with the reason it stands."""
    played = _play(
        scenario, StopDaySimulator(scenario), warm, reward, elapsed, status, None, placed=True
    )
    notes = (f"{reason}; cheapest insertion's day stands",)
    return dataclasses.replace(played, notes=notes + played.notes)


def _insertion_routes(scenario: Scenario) -> list[list[tuple[int, int]]]:
    """Each driver's pickups and drop-offs in the order cheapest insertion served them: the
    search's warm start."""
    from rldispatch.env import DispatchEnv, EnvConfig
    from rldispatch.policies.baselines import InsertionPolicy

    config = EnvConfig(max_drivers=max(len(scenario.drivers), 1))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    policy = InsertionPolicy()
    terminated = False
    env.reset()
    while not terminated:
        _, _, terminated, _, _ = env.step(policy.act(env))
    routes: list[list[tuple[int, int]]] = [[] for _ in scenario.drivers]
    for stop in env.sim.stop_log:
        routes[stop.driver].append((stop.kind, stop.ref))
    return routes


def _add_breaks(
    solver: Any, clock: Any, sim: StopDaySimulator, driver: int, service: np.ndarray
) -> None:
    """The driver's breaks as break intervals of its route, within their windows."""
    count = int(sim.break_count[driver])
    if not count:
        return
    intervals = [
        solver.FixedDurationIntervalVar(
            int(math.ceil(sim.break_earliest_min[driver, k] * TIME_SCALE)),
            int(math.floor(sim.break_latest_min[driver, k] * TIME_SCALE)) + SLACK_UNITS,
            int(math.ceil(sim.break_duration_min[driver, k] * TIME_SCALE)),
            False,
            f"break {driver} {k}",
        )
        for k in range(count)
    ]
    clock.SetBreakIntervalsOfVehicle(intervals, driver, [int(s) for s in service])


def _with_breaks(
    sim: StopDaySimulator, driver: int, route: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The route with the driver's breaks, each at the first place after the previous one
    where nobody is on board and the schedule holds (at the end when there is none)."""
    stops = list(route)
    after = 0
    for k in range(int(sim.break_count[driver])):
        aboard = 0
        positions = []
        for i, (kind, _) in enumerate(stops):
            if i >= after and aboard == 0:
                positions.append(i)
            aboard += 1 if kind == PICKUP else -1 if kind == DROPOFF else 0
        positions.append(len(stops))
        chosen = positions[-1]
        for position in positions:
            sim.stops[driver] = stops[:position] + [(BREAK, k)] + stops[position:]
            if sim._run_schedule(driver)[0]:
                chosen = position
                break
        stops = stops[:chosen] + [(BREAK, k)] + stops[chosen:]
        after = chosen + 1
    return stops


def _repaired(
    sim: StopDaySimulator, driver: int, stops: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], list[int]]:
    """The stops with the bookings the simulator cannot keep taken out, the first stop that
    fails first (a booking on board at a break that fails); and the bookings taken out."""
    dropped: list[int] = []
    while True:
        sim.stops[driver] = stops
        if sim._run_schedule(driver)[0]:
            return stops, dropped
        culprit = None
        for length in range(1, len(stops) + 1):
            sim.stops[driver] = stops[:length]
            if not sim._run_schedule(driver)[0]:
                kind, ref = stops[length - 1]
                if kind != BREAK:
                    culprit = ref
                else:
                    on_board = [r for k, r in stops[: length - 1] if k == PICKUP]
                    gone = {r for k, r in stops[: length - 1] if k == DROPOFF}
                    waiting = [r for r in on_board if r not in gone]
                    culprit = waiting[0] if waiting else None
                break
        if culprit is None:
            sim.stops[driver] = stops
            return stops, dropped
        stops = [stop for stop in stops if stop[0] == BREAK or stop[1] != culprit]
        dropped.append(culprit)


def _play(
    scenario: Scenario,
    sim: StopDaySimulator,
    routes: list[list[tuple[int, int]]],
    reward: RewardConfig,
    elapsed: float,
    status: str,
    objective: float | None,
    placed: bool = False,
) -> HindsightResult:
    """Play the routes in the simulator and report its figures (``placed``: the routes hold
    their breaks already)."""
    notes = []
    for driver, route in enumerate(routes):
        stops = list(route) if placed else _with_breaks(sim, driver, route)
        stops, dropped = _repaired(sim, driver, stops)
        if dropped:
            ids = ", ".join(scenario.bookings[b].id for b in dropped)
            notes.append(f"driver {scenario.drivers[driver].id}: dropped {ids} to replay")
        for kind, booking in stops:
            if kind != BREAK:
                sim.status[booking] = ASSIGNED
                sim.assigned_driver[booking] = driver
        sim.stops[driver] = stops
        sim._schedule(driver)
    sim._waiting = int(np.sum(sim.status != ASSIGNED))
    sim.distance_km = float(sim.plan_km.sum())
    sim.finish()
    check = check_played_day(sim)
    notes += list(check.problems)
    served = sim.status == SERVED
    metrics = sim.metrics()
    day_reward = reward.day_reward(
        assigned=int(served.sum()),
        late_pickups=sim.late_pickups,
        cancelled=int((~served).sum()),
        distance_km=sim.distance_km,
        rides_per_driver=sim.rides,
    )
    metrics = type(metrics)(**{**metrics.as_dict(), "reward": float(day_reward)})
    ids = [b.id for b in scenario.bookings]
    by_driver: list[list[Stop]] = [[] for _ in range(sim.n_drivers)]
    for stop in sim.stop_log:
        if stop.kind != BREAK:
            kind = "pickup" if stop.kind == PICKUP else "dropoff"
            by_driver[stop.driver].append(Stop(ids[stop.ref], kind, stop.start_min))
    return HindsightResult(
        name=scenario.name,
        feasible=check.ok,
        cost=sim.distance_km,
        metrics=metrics,
        routes=tuple(tuple(route) for route in by_driver),
        vehicles=tuple(d.id for d in scenario.drivers),
        dropped=tuple(ids[b] for b in np.flatnonzero(~served).tolist()),
        solve_time_s=elapsed,
        status=status,
        objective=None if objective is None else float(objective) / COST_SCALE,
        notes=tuple(notes),
    )
