"""A day under the simulator's rules as an OR-Tools routing model, planned from any state.

A driver serves one booking at a time (drive to the pickup, wait for the window, pick up,
ride, drop off; no pooling; days of stops, with shared rides, are re-planned by
:mod:`rldispatch.policies.stop_reopt` instead), so a node is a whole ride: the travel time
of an arc ``a -> b`` is ``a``'s pickup-to-free time (services and ride) plus the drive from
``a``'s drop-off to ``b``'s pickup at ``b``'s speed, exactly the simulator's legs. Each
driver starts where and when it is free (:class:`RideProblem`), may end anywhere (a shared
end node), and must be done
by the end of its shift; a booking goes only to drivers that can carry its load.

The objective is the day's reward (:class:`rldispatch.rewards.RewardConfig`), negated, in
integer units: ``km_cost`` per km (drives and rides); a skipped booking costs
``assignment_bonus + cancellation_penalty``; a late pickup (more than 5 minutes after the
requested time) costs ``late_pickup_penalty``. The late penalty is a step, which a routing
model cannot charge on a time, so a booking that can be either on time or late has two
alternative nodes (at most one visited): an *on-time* node whose window ends at
``requested + 5`` and a *late* node whose window starts after it and whose incoming arcs cost
the penalty. The balance bonus is left out (it is not a sum over arcs).

Times are scaled to integers rounding travel up, so a schedule the model accepts also holds
in exact arithmetic; :func:`replay` recomputes the exact schedule of any routes.

Learned terms (:class:`ObjectiveTerms`, ``guided-reopt``) may be added to the objective: a
prize per free booking, added to the price of leaving it out, and a value per place a plan
may end, charged on the arc into the end node; without them the model is exactly the above.

Committed bookings (``RideProblem.fixed``) are mandatory, stay with their driver and keep
their order; their windows get a few integer units of slack so that rounding never makes a
plan the simulator accepted look infeasible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.policies.routing import vehicle_nodes
from rldispatch.rewards import RewardConfig
from rldispatch.sim.kernels import schedule_plan
from rldispatch.sim.simulator import DaySimulator

TIME_SCALE = 100
"""Solver integer units per minute."""
COST_SCALE = 100_000
"""Solver integer units per reward unit."""
TIME_TOLERANCE_MIN = 1e-7


@dataclass(frozen=True)
class RideProblem:
    """What to plan: some bookings of a simulated day, and where each driver starts from.

    :param sim: the day (its arrays are read, never changed).
    :param bookings: booking indices to plan; a booking not in ``fixed`` may be left out.
    :param start_min: when each driver is free to start (its shift start, or the end of the
        ride it is on).
    :param start_vec: where (embedded, as ``TravelModel.embed`` gives).
    :param fixed: per driver, the bookings it must serve, in this order (its committed plan).
    :param keep_on_time: fixed bookings whose pickup must stay within ``requested + 5``.
    """

    sim: DaySimulator
    bookings: np.ndarray
    start_min: np.ndarray
    start_vec: np.ndarray
    fixed: tuple[tuple[int, ...], ...]
    keep_on_time: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def whole_day(cls, sim: DaySimulator) -> RideProblem:
        """Every booking, every driver at its start point at the start of its shift."""
        return cls(
            sim,
            np.arange(sim.n_bookings),
            sim.shift_start_min.copy(),
            sim.driver_start_vec.copy(),
            tuple(() for _ in range(sim.n_drivers)),
        )


@dataclass(frozen=True)
class ObjectiveTerms:
    """Terms added to the reward a :class:`RideModel` optimises, in reward units.

    :param prize: booking index -> added to the price of leaving that free booking out of
        the plan (a negative prize lets the solver leave it open more readily; the price
        never goes below 0).
    :param end_value: booking index -> the value of a driver's plan ending with that booking
        (where and when the driver is left).
    :param start_value: per driver, the value of its plan ending where it starts (an empty
        plan); None for zeros.
    """

    prize: Mapping[int, float] = field(default_factory=dict)
    end_value: Mapping[int, float] = field(default_factory=dict)
    start_value: np.ndarray | None = None


@dataclass(frozen=True)
class Replay:
    """The exact schedule of some routes: pickup times, distance, rides, broken rules."""

    pickup_min: np.ndarray
    served: np.ndarray
    distance_km: float
    rides: np.ndarray
    problems: tuple[str, ...]


def replay(problem: RideProblem, routes: Sequence[Sequence[int]]) -> Replay:
    """Each driver as early as it can through its bookings, as the simulator schedules."""
    sim = problem.sim
    pickup_min = np.full(sim.n_bookings, np.nan)
    served = np.zeros(sim.n_bookings, dtype=bool)
    rides = np.zeros(sim.n_drivers, dtype=np.int64)
    distance_km = 0.0
    problems = []
    for driver, route in enumerate(routes):
        if not len(route):
            continue
        plan = np.asarray(route, dtype=np.int64)
        start, complete, _, leg_km, _ = schedule_plan(
            plan,
            float(problem.start_min[driver]),
            problem.start_vec[driver],
            sim.pickup_vec,
            sim.dropoff_vec,
            sim.minutes_per_km,
            sim.earliest_min,
            sim.latest_min,
            sim.pickup_to_free_min,
            sim.shift_end_min[driver],
            sim.travel.kernel_args,
        )
        for booking, pickup in zip(plan.tolist(), start.tolist(), strict=True):
            if served[booking]:
                problems.append(f"booking {sim.scenario.bookings[booking].id}: served twice")
            if pickup > sim.latest_min[booking] + TIME_TOLERANCE_MIN:
                problems.append(
                    f"booking {sim.scenario.bookings[booking].id}: pickup after its window closes"
                )
            if not sim.fits[driver, booking]:
                problems.append(
                    f"booking {sim.scenario.bookings[booking].id}: load above the capacity"
                )
            served[booking] = True
            pickup_min[booking] = pickup
        if complete[-1] > sim.shift_end_min[driver] + TIME_TOLERANCE_MIN:
            problems.append(f"driver {sim.scenario.drivers[driver].id}: works past its shift")
        rides[driver] = plan.size
        distance_km += float(leg_km.sum() + sim.ride_km[plan].sum())
    return Replay(pickup_min, served, distance_km, rides, tuple(problems))


def replay_reward(problem: RideProblem, plan: Replay, reward: RewardConfig) -> float:
    """The day's reward of a replayed whole-day plan (every booking of the day counted)."""
    sim = problem.sim
    served = plan.served
    late = int(
        np.sum(plan.pickup_min[served] > sim.requested_min[served] + LATE_AFTER_REQUESTED_MIN)
    )
    return float(
        reward.day_reward(
            assigned=int(served.sum()),
            late_pickups=late,
            cancelled=int(sim.n_bookings - served.sum()),
            distance_km=plan.distance_km,
            rides_per_driver=plan.rides,
        )
    )


class RideModel:
    """The routing model of a :class:`RideProblem` (see the module docstring).

    :param seed: 0 numbers the nodes in the order of ``problem.bookings``; another value
        shuffles it, which changes the solver's tie-breaking (a cheap multi-start).
    """

    def __init__(
        self,
        problem: RideProblem,
        reward: RewardConfig,
        seed: int = 0,
        exact_lateness: bool = True,
        terms: ObjectiveTerms | None = None,
    ) -> None:
        self.problem = problem
        self.exact_lateness = exact_lateness
        self.terms = terms or ObjectiveTerms()
        sim = problem.sim
        n_drivers = sim.n_drivers
        bookings = np.asarray(problem.bookings, dtype=np.int64)
        if seed:
            bookings = bookings[np.random.default_rng(seed).permutation(bookings.size)]
        fixed_driver = {b: v for v, plan in enumerate(problem.fixed) for b in plan}
        scale = TIME_SCALE
        node_booking, node_late, node_lo, node_hi = [], [], [], []
        self.nodes_of: dict[int, list[int]] = {}
        for booking in bookings.tolist():
            lo = math.ceil(sim.earliest_min[booking] * scale)
            hi = math.floor(sim.latest_min[booking] * scale)
            late_at = math.floor((sim.requested_min[booking] + LATE_AFTER_REQUESTED_MIN) * scale)
            if booking in fixed_driver:
                slack = 2 * (len(problem.fixed[fixed_driver[booking]]) + 1)
                top = min(hi, late_at) if booking in problem.keep_on_time else hi
                variants = [(False, lo, max(lo, top) + slack)]
            else:
                if not sim.fits[:, booking].any():
                    continue
                variants = [(False, lo, min(hi, late_at)), (True, max(lo, late_at + 1), hi)]
                if not exact_lateness:
                    variants = [(False, lo, hi)]
                variants = [v for v in variants if v[1] <= v[2]]
            self.nodes_of[booking] = []
            for late, low, high in variants:
                self.nodes_of[booking].append(len(node_booking))
                node_booking.append(booking)
                node_late.append(late)
                node_lo.append(low)
                node_hi.append(high)
        self.node_booking = np.asarray(node_booking, dtype=np.int64)
        self.node_late = np.asarray(node_late, dtype=bool)
        self.node_lo = np.asarray(node_lo, dtype=np.int64)
        self.node_hi = np.asarray(node_hi, dtype=np.int64)
        n_nodes = self.node_booking.size
        self.n_nodes = n_nodes
        self.end_node = n_nodes + n_drivers
        self._build_matrices(reward)
        self._build_routing(reward, fixed_driver)

    def _build_matrices(self, reward: RewardConfig) -> None:
        problem, sim = self.problem, self.problem.sim
        nb = self.node_booking
        n_nodes, n_drivers = self.n_nodes, sim.n_drivers
        size = n_nodes + n_drivers + 1
        from_vec = np.vstack([sim.dropoff_vec[nb], problem.start_vec])
        busy_from = np.concatenate([sim.pickup_to_free_min[nb], np.zeros(n_drivers)])
        leg_km = sim.travel.distance_km(from_vec[:, None, :], sim.pickup_vec[nb][None, :, :])
        leg_pace_km = (
            sim.travel.pace_km(from_vec[:, None, :], sim.pickup_vec[nb][None, :, :])
            if sim.travel.on_roads
            else leg_km
        )
        time_units = np.zeros((size, size), dtype=np.int64)
        cost_units = np.zeros((size, size), dtype=np.int64)
        leg_min = leg_pace_km * sim.minutes_per_km[nb][None, :]
        time_units[: n_nodes + n_drivers, :n_nodes] = np.ceil(
            (busy_from[:, None] + leg_min) * TIME_SCALE
        )
        time_units[:n_nodes, self.end_node] = np.ceil(sim.pickup_to_free_min[nb] * TIME_SCALE)
        late_units = reward.late_pickup_penalty * COST_SCALE * self.node_late
        cost_units[: n_nodes + n_drivers, :n_nodes] = np.rint(
            (leg_km + sim.ride_km[nb][None, :]) * reward.km_cost * COST_SCALE + late_units[None, :]
        )
        self._add_end_values(cost_units)
        self.time_units = time_units
        self.cost_units = cost_units

    def _add_end_values(self, cost_units: np.ndarray) -> None:
        """Arcs into the end node cost ``offset - value``: every route has exactly one such
        arc, so the offset (which keeps costs >= 0) changes no choice; zero values leave the
        matrix as it is."""
        terms, n_nodes = self.terms, self.n_nodes
        node_value = np.array(
            [terms.end_value.get(int(b), 0.0) for b in self.node_booking.tolist()], dtype=float
        )
        start_value = (
            np.zeros(self.problem.sim.n_drivers)
            if terms.start_value is None
            else np.asarray(terms.start_value, dtype=float)
        )
        units = np.rint(np.concatenate([node_value, start_value]) * COST_SCALE).astype(np.int64)
        if not units.any():
            return
        offset = max(0, int(units.max()))
        cost_units[: n_nodes + start_value.size, self.end_node] = offset - units

    def _build_routing(self, reward: RewardConfig, fixed_driver: dict[int, int]) -> None:
        problem, sim = self.problem, self.problem.sim
        n_nodes, n_drivers = self.n_nodes, sim.n_drivers
        manager = pywrapcp.RoutingIndexManager(
            n_nodes + n_drivers + 1,
            n_drivers,
            [n_nodes + v for v in range(n_drivers)],
            [self.end_node] * n_drivers,
        )
        routing = pywrapcp.RoutingModel(manager)
        solver = routing.solver()
        routing.SetArcCostEvaluatorOfAllVehicles(
            routing.RegisterTransitMatrix(self.cost_units.tolist())
        )
        slack = 2 * (max((len(plan) for plan in problem.fixed), default=0) + 1)
        latest = float(sim.latest_min.max(initial=0.0))
        horizon = (
            math.ceil(max(sim.horizon_min, float(sim.shift_end_min.max()), latest) * TIME_SCALE)
            + slack
            + 1
        )
        horizon = max(horizon, math.ceil(float(problem.start_min.max()) * TIME_SCALE) + 1)
        routing.AddDimension(
            routing.RegisterTransitMatrix(self.time_units.tolist()),
            horizon,
            horizon,
            False,
            "time",
        )
        time_dim = routing.GetDimensionOrDie("time")
        self.time_dim = time_dim
        drop_penalty = int(
            round((reward.assignment_bonus + reward.cancellation_penalty) * COST_SCALE)
        )
        for booking, nodes in self.nodes_of.items():
            indices = [manager.NodeToIndex(node) for node in nodes]
            for node, index in zip(nodes, indices, strict=True):
                time_dim.CumulVar(index).SetRange(int(self.node_lo[node]), int(self.node_hi[node]))
                if booking in fixed_driver:
                    routing.VehicleVar(index).SetValues([fixed_driver[booking]])
                    continue
                if not self.exact_lateness:
                    self._soft_lateness(booking, index, reward)
                too_small = np.flatnonzero(~sim.fits[:, booking]).tolist()
                if too_small:
                    routing.VehicleVar(index).RemoveValues(too_small)
            if booking not in fixed_driver:
                prize_units = int(round(self.terms.prize.get(booking, 0.0) * COST_SCALE))
                routing.AddDisjunction(indices, max(0, drop_penalty + prize_units), 1)
        for plan in problem.fixed:
            for before, after in zip(plan, plan[1:], strict=False):
                first = time_dim.CumulVar(manager.NodeToIndex(self.nodes_of[before][0]))
                second = time_dim.CumulVar(manager.NodeToIndex(self.nodes_of[after][0]))
                solver.Add(second >= first + 1)
        self.start_units = np.ceil(problem.start_min * TIME_SCALE).astype(np.int64)
        self.end_units = np.zeros(n_drivers, dtype=np.int64)
        for vehicle in range(n_drivers):
            extra = 2 * (len(problem.fixed[vehicle]) + 1) if problem.fixed[vehicle] else 0
            end_max = max(
                math.floor(sim.shift_end_min[vehicle] * TIME_SCALE) + extra,
                int(self.start_units[vehicle]),
            )
            self.end_units[vehicle] = end_max
            time_dim.CumulVar(routing.Start(vehicle)).SetRange(
                int(self.start_units[vehicle]), horizon
            )
            time_dim.CumulVar(routing.End(vehicle)).SetMax(end_max)
        self.manager, self.routing, self.time_dim = manager, routing, time_dim

    def _soft_lateness(self, booking: int, index: int, reward: RewardConfig) -> None:
        """The quick model's lateness charge: linear in the minutes after ``requested + 5``,
        reaching the full penalty at the latest possible pickup (an under-estimate)."""
        sim = self.problem.sim
        late_after = sim.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
        late_span_min = sim.latest_min[booking] - late_after
        if reward.late_pickup_penalty > 0 and late_span_min > 0:
            per_minute = reward.late_pickup_penalty / max(late_span_min, 1.0)
            coefficient = max(1, int(round(per_minute * COST_SCALE / TIME_SCALE)))
            self.time_dim.SetCumulVarSoftUpperBound(
                index, int(math.floor(late_after * TIME_SCALE)), coefficient
            )

    # --- warm starts and solutions ---------------------------------------------------------

    def index_routes(self, routes: Sequence[Sequence[int]]) -> list[list[int]]:
        """Solver index routes for booking routes, repaired to fit the integer model: each
        booking takes its on-time node when it can and its late node otherwise, and a free
        booking that fits neither (or the shift end) is left out. Fixed bookings are kept."""
        sim = self.problem.sim
        fixed = {b for plan in self.problem.fixed for b in plan}
        result = []
        for vehicle, route in enumerate(routes):
            chosen = [b for b in route if b in self.nodes_of]
            chosen = [b for b in chosen if b in fixed or sim.fits[vehicle, b]]
            while True:
                nodes, end = self._walk(vehicle, chosen, fixed)
                droppable = [k for k, b in enumerate(chosen) if b not in fixed]
                if end <= self.end_units[vehicle] or not droppable:
                    break
                del chosen[droppable[-1]]
            result.append([self.manager.NodeToIndex(node) for node in nodes])
        return result

    def _walk(self, vehicle: int, route: list[int], fixed: set[int]) -> tuple[list[int], int]:
        time_units = self.time_units
        here = self.n_nodes + vehicle
        clock = int(self.start_units[vehicle])
        nodes = []
        for booking in route:
            for node in self.nodes_of[booking]:
                arrive = max(clock + int(time_units[here, node]), int(self.node_lo[node]))
                if arrive <= self.node_hi[node] or booking in fixed:
                    nodes.append(node)
                    here, clock = node, arrive
                    break
        end = clock + int(time_units[here, self.end_node]) if nodes else clock
        return nodes, end

    def initial_assignment(self, routes: Sequence[Sequence[int]]) -> Any | None:
        """An assignment for booking routes (see :meth:`index_routes`); None if it breaks a
        rule of the model."""
        return self.routing.ReadAssignmentFromRoutes(self.index_routes(routes), True)

    def solve(self, warm_routes: Sequence[Sequence[int]] | None, params: Any) -> Any | None:
        """The search from ``warm_routes`` when they fit the model, else from its first
        solution strategy; None when no solution is found."""
        initial = None if warm_routes is None else self.initial_assignment(warm_routes)
        if initial is not None:
            return self.routing.SolveFromAssignmentWithParameters(initial, params)
        return self.routing.SolveWithParameters(params)

    def booking_routes(self, solution: Any) -> list[list[int]]:
        """Each driver's bookings in order, from a solution."""
        return [
            [int(self.node_booking[node]) for node in nodes]
            for nodes in vehicle_nodes(self.routing, self.manager, solution)
        ]

    def planned_pickup_min(self, solution: Any) -> dict[int, float]:
        """The solution's pickup time of each planned booking (solver rounding)."""
        times = {}
        for nodes in vehicle_nodes(self.routing, self.manager, solution):
            for node in nodes:
                index = self.manager.NodeToIndex(node)
                times[int(self.node_booking[node])] = (
                    solution.Min(self.time_dim.CumulVar(index)) / TIME_SCALE
                )
        return times
