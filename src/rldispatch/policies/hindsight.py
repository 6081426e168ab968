"""The hindsight solver: the best plan of a day when every booking is known in advance.

Two entry points share the OR-Tools routing code (:mod:`rldispatch.policies.routing`):

- :func:`solve_cordeau` (in :mod:`rldispatch.policies.hindsight_cordeau`) solves a static
  dial-a-ride instance (Cordeau), minimising total distance.
- :func:`solve_scenario` solves one of our scenarios with the simulator's rules
  (:mod:`rldispatch.policies.ride_model`), maximising the day's reward: bookings are optional
  at the price of the reward they would bring. Given the routes an online policy played that
  day, it starts its search from them and never returns a plan with less reward.

Reported times, costs and metrics are recomputed from the routes with exact travel times.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.policies.hindsight_check import check_scenario_plan
from rldispatch.policies.hindsight_cordeau import CORDEAU_FIRST_SOLUTIONS, solve_cordeau
from rldispatch.policies.hindsight_result import HindsightResult, Stop, day_metrics
from rldispatch.policies.ride_model import (
    COST_SCALE,
    Replay,
    RideModel,
    RideProblem,
    replay,
    replay_reward,
)
from rldispatch.policies.routing import search_parameters, solve_portfolio, status_name
from rldispatch.policies.stop_hindsight import solve_stop_scenario
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import DaySimulator

QUICK_MODEL_SHARE = 0.5
"""Share of the time limit for the quick model (linear lateness, half the nodes) before the
exact model (the reward's step lateness penalty) improves its plan."""

__all__ = [
    "CORDEAU_FIRST_SOLUTIONS",
    "HindsightResult",
    "Stop",
    "solve_cordeau",
    "solve_scenario",
]


def solve_scenario(
    scenario: Scenario,
    time_limit_s: float = 30.0,
    reward: RewardConfig | None = None,
    seed: int = 0,
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION",
    initial_routes: Sequence[Sequence[int]] | None = None,
    travel_factor: np.ndarray | None = None,
) -> HindsightResult:
    """The best day the simulator allows when every booking is known from the start.

    As in the simulator, a driver serves one booking at a time, a leg's speed is that of the
    booking it leads to, every pickup starts inside its window, a driver's work ends by the
    end of its shift, and a booking fits a driver when its load is within the capacity.
    Drivers start at their start point and may end anywhere. The search maximises the day's
    reward with the weights of ``reward`` (the balance bonus aside; see
    :mod:`rldispatch.policies.ride_model`).

    A day with shared rides, breaks or maximum ride times is planned by
    :func:`rldispatch.policies.stop_hindsight.solve_stop_scenario` (pickups and drop-offs,
    from cheapest insertion's day; ``initial_routes`` and ``seed`` do not apply).

    :param initial_routes: per driver, the booking indices (scenario order) it served, in
        order: a plan an online policy played (``PlayedDay.routes``). The search runs in two
        phases: the quick model (lateness charged linearly, one node per booking) for
        ``QUICK_MODEL_SHARE`` of the time, then the exact model (the reward's own step
        penalty) from the better of its plan and this one. The result is the best of the
        three by the exact reward (balance bonus included), so it is never worse than the
        plan it was given; ``status`` says which it is.
    :param seed: 0 numbers the bookings in scenario order; another value shuffles the order
        the solver sees them in (changes its tie-breaking).
    :param travel_factor: per booking, how many times its planned minutes the drive to it
        and its ride took (a realised day, :func:`rldispatch.sim.noise.realised_day`).
    """
    if scenario.has_stops:
        return solve_stop_scenario(scenario, time_limit_s, reward, first_solution)
    reward = reward or RewardConfig()
    started = time.monotonic()
    sim = DaySimulator(scenario)
    if travel_factor is not None:
        sim.scale_travel(travel_factor)
    problem = RideProblem.whole_day(sim)
    candidates: list[tuple[str, list[list[int]]]] = []
    if initial_routes is not None:
        candidates.append(("the given plan", [list(route) for route in initial_routes]))
    # Phase 1: the quick model (one node per booking, lateness charged linearly).
    quick = RideModel(problem, reward, seed=seed, exact_lateness=False)
    quick_s = time_limit_s * QUICK_MODEL_SHARE
    solution, status = solve_portfolio(quick.routing, quick_s, (first_solution,))
    if solution is not None:
        candidates.append(("the quick model", quick.booking_routes(solution)))
    # Phase 2: the exact model, from the best plan so far.
    scored = _best_first(problem, candidates, reward)
    exact = RideModel(problem, reward, seed=seed)
    objective = None
    remaining_s = max(0.1, time_limit_s - (time.monotonic() - started))
    start = exact.initial_assignment(scored[0][2]) if scored else None
    if start is None:
        solution, status = solve_portfolio(exact.routing, remaining_s, (first_solution,))
    else:
        params = search_parameters(remaining_s, first_solution)
        solution = exact.routing.SolveFromAssignmentWithParameters(start, params)
        status = status_name(exact.routing)
    if solution is not None:
        objective = solution.ObjectiveValue() / COST_SCALE
        candidates.append(("the exact model", exact.booking_routes(solution)))
    scored = _best_first(problem, candidates, reward)
    if scored:
        source, plan, routes = scored[0]
        status = f"{status}; best plan from {source}"
    else:
        plan = routes = None
    elapsed = time.monotonic() - started
    vehicles = tuple(d.id for d in scenario.drivers)
    if plan is None:
        return HindsightResult(
            name=scenario.name,
            feasible=False,
            cost=math.inf,
            metrics=None,
            routes=tuple(() for _ in vehicles),
            vehicles=vehicles,
            dropped=tuple(b.id for b in scenario.bookings),
            solve_time_s=elapsed,
            status=status,
        )
    return _result(
        scenario, problem, routes, plan, reward, elapsed, status, objective, travel_factor
    )


def _best_first(
    problem: RideProblem, candidates: list[tuple[str, list[list[int]]]], reward: RewardConfig
) -> list[tuple[str, Replay, list[list[int]]]]:
    """The candidate plans that keep every rule, best reward first (ties: earlier first)."""
    scored = []
    for order, (source, routes) in enumerate(candidates):
        plan = replay(problem, routes)
        if not plan.problems:
            scored.append((-replay_reward(problem, plan, reward), order, source, plan, routes))
    scored.sort(key=lambda item: item[:2])
    return [(source, plan, routes) for _, _, source, plan, routes in scored]


def _result(
    scenario: Scenario,
    problem: RideProblem,
    routes: list[list[int]],
    plan: Replay,
    reward: RewardConfig,
    elapsed: float,
    status: str,
    objective: float | None,
    travel_factor: np.ndarray | None = None,
) -> HindsightResult:
    sim = problem.sim
    stops = []
    for route in routes:
        driver_stops = []
        for booking in route:
            pickup = float(plan.pickup_min[booking])
            dropoff = pickup + sim.service_min[booking] + sim.ride_min[booking]
            driver_stops.append(Stop(scenario.bookings[booking].id, "pickup", pickup))
            driver_stops.append(Stop(scenario.bookings[booking].id, "dropoff", float(dropoff)))
        stops.append(tuple(driver_stops))
    notes = list(plan.problems) + check_scenario_plan(scenario, stops, travel_factor)
    loaded_km = float(sim.ride_km[plan.served].sum())
    passenger_km = float((sim.ride_km[plan.served] * sim.load[plan.served]).sum())
    metrics = dataclasses.replace(
        day_metrics(
            sim.requested_min,
            np.nan_to_num(plan.pickup_min),
            plan.served,
            plan.distance_km,
            loaded_km,
            plan.rides,
            reward,
        ),
        # Whole bookings, as the simulator plays them: each load carried over its own ride,
        # straight from the pickup to the drop-off.
        occupancy=passenger_km / loaded_km if loaded_km else 0.0,
        ride_time_ratio=1.0 if plan.served.any() else 0.0,
    )
    if not notes and abs(metrics.reward - replay_reward(problem, plan, reward)) > 1e-6:
        notes.append("the reward of the metrics and of the replay differ")
    return HindsightResult(
        name=scenario.name,
        feasible=not notes,
        cost=plan.distance_km,
        metrics=metrics,
        routes=tuple(stops),
        vehicles=tuple(d.id for d in scenario.drivers),
        dropped=tuple(
            b.id for b, done in zip(scenario.bookings, plan.served, strict=True) if not done
        ),
        solve_time_s=elapsed,
        status=status,
        objective=objective,
        notes=tuple(notes),
    )
