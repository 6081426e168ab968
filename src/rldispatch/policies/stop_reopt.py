"""The re-plan of ``reopt`` on a day of stops: shared rides, places by kind, ride limits,
breaks.

At a decision, the state of a :class:`~rldispatch.sim.stop_simulator.StopDaySimulator` becomes
an OR-Tools pickup-and-delivery model, as the hindsight plan of such a day
(:mod:`rldispatch.policies.stop_hindsight`) but from now:

- each driver starts where and when it is free of the stop it has set off for, with the
  passengers it carries on board (their places taken from the start; each one's drop-off
  on that driver, by its ride limit counted from the end of its pickup);
- the bookings a driver has been given stay with it (pickup and drop-off), and its stops
  keep their order (the simulator never reorders a plan): a constraint on their times;
- the open bookings whose window opens within the horizon are optional, a skipped one
  costs ``assignment_bonus + cancellation_penalty``; a booking goes only to a vehicle with
  a place of each kind it needs;
- one capacity dimension per kind of place and one counting the bookings on board (at most
  one on a day without shared rides); each pickup in its window, lateness charged linearly
  as in the hindsight plan; each ride within its limit; the driver's breaks still to take
  that may start within the horizon as break intervals no earlier than now (the others
  are left to later re-plans: break intervals make the search about ten times slower);
  every route done by the end of its shift.

The search starts from cheapest insertion played on a copy of the state (each open booking
of the model, by deadline, at its cheapest feasible place), then OR-Tools' greedy descent
(or guided local search for a solution budget) improves it. The plan says which driver
each booking goes to and when it is picked up; ``reopt`` acts on it through the env's own
actions, and the simulator decides exactly where the stops go and whether they hold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, PLACE_KINDS
from rldispatch.policies.stop_units import COST_SCALE, LATE_SPREAD_MIN, SLACK_UNITS, TIME_SCALE
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import OPEN
from rldispatch.sim.stop_kernels import BREAK, DROPOFF, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator


def open_bookings_within(sim: StopDaySimulator, horizon_min: float) -> np.ndarray:
    """The open bookings whose window opens within ``horizon_min`` of now."""
    return np.flatnonzero((sim.status == OPEN) & (sim.earliest_min <= sim.now_min + horizon_min))


def insertion_stops(sim: StopDaySimulator, bookings: np.ndarray) -> list[list[tuple[int, int]]]:
    """Each driver's stops once ``bookings`` are given by cheapest insertion on a copy of the
    state, the most pressing (earliest deadline) first; a booking nobody can take is left."""
    copy = sim.copy()
    copy.offer_every_booking()
    order = sorted(bookings.tolist(), key=lambda b: (copy.latest_min[b], b))
    for booking in order:
        table = copy.best_insertions(np.array([booking]))
        cost = np.where(table.feasible[:, 0], table.cost[:, 0], np.inf)
        driver = int(np.argmin(cost))
        if np.isfinite(cost[driver]):
            copy.assign(driver, booking)
    return [list(stops) for stops in copy.stops]


class StopRideModel:
    """The re-plan of a day of stops from the simulator's state (see the module docstring).

    :param sim: the state (not changed).
    :param open_bookings: the open bookings to plan (optional in the model).
    :param reward: the day's reward weights the objective follows.
    :param horizon_min: the breaks that may start within this many minutes are in the model
        (break intervals slow OR-Tools' search tenfold; the simulator keeps every break).
    """

    def __init__(
        self,
        sim: StopDaySimulator,
        open_bookings: np.ndarray,
        reward: RewardConfig,
        horizon_min: float = np.inf,
    ) -> None:
        self.sim = sim
        self.horizon_min = float(horizon_min)
        m = sim.n_drivers
        planned = [ref for stops in sim.stops for kind, ref in stops if kind == PICKUP]
        aboard = [b for bookings in sim.onboard_bookings for b in bookings]
        self.open_bookings = [int(b) for b in open_bookings]
        self.paired = planned + self.open_bookings
        p = len(self.paired)
        # Nodes: 0 the shared end, 1..m the drivers' starts, the pickups and drop-offs of
        # the planned and open bookings, then the drop-offs of those on board.
        self.booking_of = np.concatenate(
            [np.full(1 + m, -1), self.paired, self.paired, aboard]
        ).astype(np.int64)
        self.pickup_node = {b: 1 + m + k for k, b in enumerate(self.paired)}
        self.dropoff_node = {b: 1 + m + p + k for k, b in enumerate(self.paired)}
        self.dropoff_node.update({b: 1 + m + 2 * p + k for k, b in enumerate(aboard)})
        n_nodes = self.booking_of.size
        booking = np.maximum(self.booking_of, 0)
        vec = np.concatenate(
            [
                np.zeros((1, sim.anchor_vec.shape[1])),
                sim.anchor_vec,
                sim.pickup_vec[booking[1 + m : 1 + m + p]],
                sim.dropoff_vec[booking[1 + m + p :]],
            ]
        )
        service = np.where(self.booking_of >= 0, sim.service_min[booking], 0.0)
        km = sim.travel.distance_km(vec[:, None, :], vec[None, :, :])
        km[:, 0] = 0.0
        km[0, :] = 0.0
        pace_km = km  # the km a leg's time is counted on (on a road network, its own)
        if sim.travel.on_roads:
            pace_km = sim.travel.pace_km(vec[:, None, :], vec[None, :, :])
            pace_km[:, 0] = 0.0
            pace_km[0, :] = 0.0
        pace = np.where(self.booking_of >= 0, sim.minutes_per_km[booking], 0.0)
        transit = np.ceil((service[:, None] + pace_km * pace[None, :]) * TIME_SCALE).astype(
            np.int64
        )
        arc_cost = np.round(km * reward.km_cost * COST_SCALE).astype(np.int64)
        service_units = np.ceil(service * TIME_SCALE).astype(np.int64)

        manager = pywrapcp.RoutingIndexManager(n_nodes, m, list(range(1, m + 1)), [0] * m)
        routing = pywrapcp.RoutingModel(manager)
        solver = routing.solver()
        self.manager, self.routing = manager, routing
        cost_index = routing.RegisterTransitMatrix(arc_cost.tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(cost_index)
        time_index = routing.RegisterTransitMatrix(transit.tolist())
        horizon = int(math.ceil(max(sim.horizon_min, float(sim.shift_end_min.max())) * TIME_SCALE))
        horizon += SLACK_UNITS + int(math.ceil(sim.now_min * TIME_SCALE))
        routing.AddDimension(time_index, horizon, horizon, False, "time")
        clock = routing.GetDimensionOrDie("time")
        self.clock = clock

        # Places by kind and bookings on board: the start node carries what is on board.
        loads = np.zeros((n_nodes, len(PLACE_KINDS) + 1), dtype=np.int64)
        loads[1 : 1 + m, : len(PLACE_KINDS)] = sim.onboard
        loads[1 : 1 + m, -1] = [len(b) for b in sim.onboard_bookings]
        kinds = np.append(sim.load_by_kind[booking], np.ones((n_nodes, 1), dtype=np.int64), 1)
        loads[1 + m : 1 + m + p] = kinds[1 + m : 1 + m + p]
        loads[1 + m + p :] = -kinds[1 + m + p :]
        capacities = [sim.capacity_by_kind[:, k] for k in range(len(PLACE_KINDS))]
        capacities.append(np.full(m, sim.max_bookings_on_board))
        for k, (name, capacity) in enumerate(
            zip((*PLACE_KINDS, "on board"), capacities, strict=True)
        ):
            index = routing.RegisterUnaryTransitVector(loads[:, k].tolist())
            routing.AddDimensionWithVehicleCapacity(
                index, 0, [int(min(c, n_nodes)) for c in capacity], True, name
            )

        for driver in range(m):
            start, end = routing.Start(driver), routing.End(driver)
            begin = int(math.ceil(max(sim.anchor_min[driver], sim.now_min) * TIME_SCALE))
            high = max(int(math.floor(sim.shift_end_min[driver] * TIME_SCALE)), begin)
            clock.CumulVar(start).SetRange(begin, begin)
            clock.CumulVar(end).SetRange(begin, high + SLACK_UNITS)
            self._add_breaks(solver, driver, begin, service_units)
            # The driver's stops: kept on it and in their order.
            previous = None
            for kind, ref in sim.stops[driver]:
                if kind == BREAK:
                    continue
                node = self.pickup_node[ref] if kind == PICKUP else self.dropoff_node[ref]
                index = manager.NodeToIndex(node)
                routing.VehicleVar(index).SetValue(driver)
                if previous is not None:
                    solver.Add(clock.CumulVar(previous) <= clock.CumulVar(index))
                previous = index
        skip_penalty = max(
            1, int(round((reward.assignment_bonus + reward.cancellation_penalty) * COST_SCALE))
        )
        late_per_unit = max(
            1, int(round(reward.late_pickup_penalty * COST_SCALE / (LATE_SPREAD_MIN * TIME_SCALE)))
        )
        open_set = set(self.open_bookings)
        for b in self.paired:
            pickup = manager.NodeToIndex(self.pickup_node[b])
            dropoff = manager.NodeToIndex(self.dropoff_node[b])
            routing.AddPickupAndDelivery(pickup, dropoff)
            low = int(math.ceil(sim.earliest_min[b] * TIME_SCALE))
            high = max(int(math.floor(sim.latest_min[b] * TIME_SCALE)) + SLACK_UNITS, low)
            clock.CumulVar(pickup).SetRange(low, high)
            limit = sim.max_ride_limit_min[b]
            if np.isfinite(limit):
                most = int(service_units[self.pickup_node[b]] + math.floor(limit * TIME_SCALE))
                solver.Add(clock.CumulVar(dropoff) - clock.CumulVar(pickup) <= most + SLACK_UNITS)
            on_time = int(
                math.floor((sim.requested_min[b] + LATE_AFTER_REQUESTED_MIN) * TIME_SCALE)
            )
            clock.SetCumulVarSoftUpperBound(pickup, on_time, late_per_unit)
            if b in open_set:
                routing.AddDisjunction([pickup, dropoff], skip_penalty, 2)
                for driver in np.flatnonzero(~sim.fits[:, b]).tolist():
                    routing.VehicleVar(pickup).RemoveValue(driver)
        for b in aboard:
            limit = sim.max_ride_limit_min[b]
            if np.isfinite(limit) and np.isfinite(sim.picked_done_min[b]):
                dropoff = manager.NodeToIndex(self.dropoff_node[b])
                latest = int(math.floor((sim.picked_done_min[b] + limit) * TIME_SCALE))
                clock.CumulVar(dropoff).SetMax(max(latest + SLACK_UNITS, 0))

    def _add_breaks(self, solver: Any, driver: int, begin: int, service: np.ndarray) -> None:
        """The breaks still in the driver's stops that may start within the horizon, as break
        intervals no earlier than now."""
        sim = self.sim
        soon = sim.now_min + self.horizon_min
        breaks = [
            ref
            for kind, ref in sim.stops[driver]
            if kind == BREAK and sim.break_earliest_min[driver, ref] <= soon
        ]
        if not breaks:
            return
        intervals = []
        for k in breaks:
            low = max(int(math.ceil(sim.break_earliest_min[driver, k] * TIME_SCALE)), begin)
            high = max(int(math.floor(sim.break_latest_min[driver, k] * TIME_SCALE)), low)
            duration = int(math.ceil(sim.break_duration_min[driver, k] * TIME_SCALE))
            intervals.append(
                solver.FixedDurationIntervalVar(
                    low, high + SLACK_UNITS, duration, False, f"break {driver} {k}"
                )
            )
        self.clock.SetBreakIntervalsOfVehicle(intervals, driver, [int(s) for s in service])

    def _node_routes(self, stops: list[list[tuple[int, int]]]) -> list[list[int]]:
        routes = []
        for driver_stops in stops:
            route = []
            for kind, ref in driver_stops:
                if kind == PICKUP and ref in self.pickup_node:
                    route.append(self.pickup_node[ref])
                elif kind == DROPOFF and ref in self.dropoff_node:
                    route.append(self.dropoff_node[ref])
            routes.append(route)
        return routes

    def solve(self, warm_stops: list[list[tuple[int, int]]] | None, params: Any) -> Any | None:
        """The best plan the search finds from ``warm_stops`` (each driver's stops; None or
        routes the model refuses: OR-Tools' own first solution), or None.

        The start is handed to the search as its routes (successor variables) alone.
        Reading it as a whole solution first (``ReadAssignmentFromRoutes``) took minutes on
        some states of a day with breaks, placing the break intervals."""
        routing, manager = self.routing, self.manager
        routing.CloseModelWithParameters(params)
        if warm_stops is not None:
            routes = [
                [manager.NodeToIndex(node) for node in route]
                for route in self._node_routes(warm_stops)
            ]
            start = routing.solver().Assignment()
            if routing.RoutesToAssignment(routes, True, True, start):
                return routing.SolveFromAssignmentWithParameters(start, params)
        return routing.SolveWithParameters(params)

    def booking_routes(self, solution: Any) -> list[list[int]]:
        """Each driver's bookings in the order of their pickups in ``solution``."""
        routes = []
        routing, manager = self.routing, self.manager
        for driver in range(self.sim.n_drivers):
            index = solution.Value(routing.NextVar(routing.Start(driver)))
            route = []
            while not routing.IsEnd(index):
                node = manager.IndexToNode(index)
                if node in self._pickup_nodes:
                    route.append(int(self.booking_of[node]))
                index = solution.Value(routing.NextVar(index))
            routes.append(route)
        return routes

    @property
    def _pickup_nodes(self) -> set[int]:
        if not hasattr(self, "_pickups"):
            self._pickups = set(self.pickup_node.values())
        return self._pickups

    def planned_pickup_min(self, solution: Any) -> dict[int, float]:
        """The planned pickup minute of every booking ``solution`` serves."""
        planned = {}
        for b, node in self.pickup_node.items():
            index = self.manager.NodeToIndex(node)
            if solution.Value(self.routing.NextVar(index)) != index:
                planned[b] = solution.Min(self.clock.CumulVar(index)) / TIME_SCALE
        return planned
