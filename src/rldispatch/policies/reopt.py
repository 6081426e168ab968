"""``reopt``: rolling-horizon re-optimisation with OR-Tools, the strongest non-learning rival.

At a decision the policy re-plans every booking it knows of and nobody has been given yet
(released, open, window opening within ``horizon_min``) together with every driver's
committed plan, with the routing model the hindsight solver uses
(:mod:`rldispatch.policies.ride_model`, which optimises the day's reward):

- each driver starts where and when it is free: the end of the ride it is on (a driver
  already on its way stays on its way), else its start point and shift start;
- the bookings a driver has been given stay with it, in their order, and a booking that is
  on time in its plan stays on time (the env cannot take a booking back);
- the search starts from the previous plan (the committed plans merged with the open
  bookings the previous plan gave each driver, in planned time order);
- the search is OR-Tools' greedy descent from that start to a local optimum (its default
  budget, ``solution_limit=0``: a few tens of ms on a geneva day), or guided local search
  stopped after ``solution_limit`` solutions. Either way the budget counts moves, not
  seconds, so a day plays the same for a given seed and budget on any machine.
  ``time_limit_s`` adds a wall-clock cap per re-plan; it is off by default because a cap
  that is ever reached makes the plan depend on the machine's speed. A caller deciding within
  a wall-clock budget (the served look ahead of ``guided-reopt``) sets
  :attr:`ReoptPolicy.replan_deadline`: the search then stops there with the best plan found
  so far, and a re-plan begun past it keeps the warm start as it stands (the first solution,
  whatever the machine's speed). The bookings new since the previous re-plan that a search
  stopped this way leaves out are treated as bookings the plan never saw (below).

It then acts through the env's own actions: of the visible bookings the plan gives to a
driver (and the action mask allows), the one with the earliest planned pickup goes to that
driver (the env inserts it at its cheapest place in the driver's plan); when the plan gives
none of them, it waits. It re-plans when the clock has moved on by ``replan_every_min`` (0:
at every new moment) or new bookings became known, and when the env refuses what the plan
says after the plans changed. A visible booking the plan never saw (new since the last
re-plan) and a state the model cannot solve fall back to cheapest insertion
(``fallbacks`` counts those decisions).

On a day of stops (shared rides, places by kind, ride limits, breaks) the re-plan is the
pickup-and-delivery model of :mod:`rldispatch.policies.stop_reopt` instead, which shares
rides; the policy acts on it the same way.

The model of a re-plan is built in one place (:meth:`ReoptPolicy.replan_model`); a subclass
may add terms to its objective (:meth:`ReoptPolicy.objective_terms`), as ``guided-reopt``
does with learned prizes and end values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action
from rldispatch.policies.plan_actions import planned_action
from rldispatch.policies.ride_model import ObjectiveTerms, RideModel, RideProblem
from rldispatch.policies.routing import search_cut_short, search_parameters
from rldispatch.policies.stop_reopt import StopRideModel, insertion_stops, open_bookings_within
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import OPEN, UNRELEASED, DaySimulator
from rldispatch.sim.stop_simulator import StopDaySimulator

DEFAULT_SOLUTION_LIMIT = 0
"""The budget of a re-plan: 0 is greedy descent to a local optimum; ``n > 0`` is guided local
search stopped after ``n`` solutions (on geneva days 60 took 15 times as long for no more
reward)."""
DEFAULT_HORIZON_MIN = 120.0
"""Bookings whose window opens later than this are left to a later re-plan."""

ReplanListener = Callable[[DispatchEnv, RideProblem, list[list[int]], RideModel, Any | None], None]
"""Told of each re-plan: the env, the problem, the warm-start routes, the model and its
solution (None when none was found)."""


def state_problem(
    sim: DaySimulator, horizon_min: float = np.inf, unreleased: bool = False
) -> RideProblem:
    """The plan of the rest of the day from the simulator's state: every driver free where
    and when its locked ride ends, its committed plan kept in order (and on time where it is
    on time), the open bookings whose window opens within ``horizon_min``; with
    ``unreleased`` also the bookings not yet known (the full-information plan of a state)."""
    now = sim.now_min
    planned = (sim.status == OPEN) | ((sim.status == UNRELEASED) & unreleased)
    open_now = planned & (sim.earliest_min <= now + horizon_min)
    fixed = tuple(tuple(plan) for plan in sim.plans)
    committed = [b for plan in fixed for b in plan]
    keep_on_time = frozenset(
        booking
        for driver, plan in enumerate(sim.plans)
        for booking, start in zip(plan, sim.plan_start[driver].tolist(), strict=True)
        if start <= sim.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
    )
    bookings = np.concatenate([np.asarray(committed, dtype=np.int64), np.flatnonzero(open_now)])
    return RideProblem(
        sim,
        np.sort(bookings),
        np.maximum(sim.anchor_min, now),
        sim.anchor_vec.copy(),
        fixed,
        keep_on_time,
    )


class ReoptPolicy:
    """Rolling-horizon re-optimisation (see the module docstring).

    :param horizon_min: plan the open bookings whose window opens within this many minutes.
    :param replan_every_min: re-plan at most this often (0: whenever the clock moved).
    :param solution_limit: the search budget of a re-plan: 0 for greedy descent to a local
        optimum, else guided local search for that many solutions (deterministic either way).
    :param time_limit_s: optional wall-clock cap per re-plan (None: none, deterministic).
    :param seed: 0 keeps the bookings in day order in the model; another value shuffles
        them (the solver's tie-breaking).
    :param commit_within_min: commit a booking the plan gives to a driver only once its
        planned pickup is at most this many minutes ahead (None: as soon as it is planned);
        until then it stays open, planned again at each re-plan.
    :param hold_only_if_overloaded: with ``commit_within_min``, hold bookings back only while
        the last re-plan left at least ``overload_left_out`` open bookings of its problem out of
        the plan (the fleet cannot serve everything it knows of); otherwise commit as ``reopt``
        does.
    """

    name = "reopt"

    def __init__(
        self,
        horizon_min: float = DEFAULT_HORIZON_MIN,
        replan_every_min: float = 0.0,
        solution_limit: int = DEFAULT_SOLUTION_LIMIT,
        time_limit_s: float | None = None,
        seed: int = 0,
        commit_within_min: float | None = None,
        hold_only_if_overloaded: bool = False,
        overload_left_out: int = 1,
    ) -> None:
        if commit_within_min is not None and not commit_within_min >= 0:
            raise ValueError("reopt: commit_within_min must be >= 0 (or None)")
        if overload_left_out < 1:
            raise ValueError("reopt: overload_left_out must be >= 1")
        if horizon_min <= 0 or replan_every_min < 0 or solution_limit < 0:
            raise ValueError(
                "reopt: horizon_min must be > 0, replan_every_min >= 0, solution_limit >= 1"
            )
        self.horizon_min = float(horizon_min)
        self.replan_every_min = float(replan_every_min)
        self.solution_limit = int(solution_limit)
        self.time_limit_s = time_limit_s
        self.seed = int(seed)
        self.commit_within_min = None if commit_within_min is None else float(commit_within_min)
        self.hold_only_if_overloaded = bool(hold_only_if_overloaded)
        self.overload_left_out = int(overload_left_out)
        self.fallbacks = 0
        self.replans = 0
        self.on_replan: ReplanListener | None = None
        self.replan_deadline: float | None = None
        """A moment on :func:`time.perf_counter` where a re-plan's search stops (None: none;
        the module docstring)."""
        self.cut_short_replans = 0
        self._sim: DaySimulator | None = None

    # --- acting ----------------------------------------------------------------------------

    def act(self, env: DispatchEnv) -> int:
        sim = env.sim
        if sim is not self._sim:
            self._new_day(sim)
        if self._plan_is_stale(sim):
            self._replan(env)
        action = self._planned_action(env)
        if action is None and self._assigned_at_plan != self._assigned(sim):
            self._replan(env)
            action = self._planned_action(env)
        if action is None:
            action = self._fallback(env)
        return action

    def _new_day(self, sim: DaySimulator) -> None:
        self._sim = sim
        self._driver_of: dict[int, int] = {}
        self._pickup_of: dict[int, float] = {}
        self._known: set[int] = set()
        self._routes: list[list[int]] = [[] for _ in range(sim.n_drivers)]
        self._planned_min = -np.inf
        self._released_at_plan = -1
        self._assigned_at_plan = -1
        self._solved = False
        self._left_out = 0

    def _assigned(self, sim: DaySimulator) -> int:
        return sum(len(plan) for plan in sim.plans) + int(sim.rides.sum())

    def _plan_is_stale(self, sim: DaySimulator) -> bool:
        if self._released_at_plan < 0:
            return True
        if sim.now_min - self._planned_min < self.replan_every_min:
            return False
        released = int(np.sum(sim.status != UNRELEASED))
        return sim.now_min != self._planned_min or released != self._released_at_plan

    def _planned_action(self, env: DispatchEnv) -> int | None:
        if not self._solved:
            return None
        return planned_action(env, self.committable(env), self._pickup_of)

    def committable(self, env: DispatchEnv) -> dict[int, int]:
        """booking -> driver of the plan's bookings that may be committed now (all of them
        unless ``commit_within_min`` holds back those planned for later)."""
        if self.commit_within_min is None:
            return self._driver_of
        if self.hold_only_if_overloaded and self._left_out < self.overload_left_out:
            return self._driver_of
        until = env.sim.now_min + self.commit_within_min
        return {b: d for b, d in self._driver_of.items() if self._pickup_of[b] <= until}

    def _fallback(self, env: DispatchEnv) -> int:
        """Cheapest insertion of a visible booking the plan has not seen (all of them when
        the last re-plan found no solution); else wait."""
        table = env.table
        if table is None:
            return 0
        grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
        for slot, booking in enumerate(env.visible.tolist()):
            if self._solved and booking in self._known:
                continue
            column = np.where(grid[: env.sim.n_drivers, slot], table.cost[:, slot], np.inf)
            driver = int(np.argmin(column))
            if np.isfinite(column[driver]):
                self.fallbacks += 1
                return assignment_action(env, driver, slot)
        return 0

    # --- planning --------------------------------------------------------------------------

    def problem(self, sim: DaySimulator) -> RideProblem:
        """The re-planning problem of the simulator's current state."""
        return state_problem(sim, self.horizon_min)

    def _warm_routes(self, sim: DaySimulator, problem: RideProblem) -> list[list[int]]:
        """Each driver's committed plan merged, by planned time, with the open bookings the
        previous plan gave it."""
        in_problem = set(problem.bookings.tolist())
        routes = []
        for driver, plan in enumerate(sim.plans):
            timed = list(zip(sim.plan_start[driver].tolist(), plan, strict=True))
            timed += [
                (self._pickup_of[b], b)
                for b in self._routes[driver]
                if sim.status[b] == OPEN and b in in_problem
            ]
            routes.append([booking for _, booking in sorted(timed)])
        return routes

    def objective_terms(self, env: DispatchEnv, problem: RideProblem) -> ObjectiveTerms | None:
        """Terms added to the reward the re-plan optimises (none: the day's reward alone)."""
        return None

    def search_parameters(self) -> Any:
        """The routing search of a re-plan (see the module docstring): within
        ``time_limit_s`` and until :attr:`replan_deadline`; past the deadline the first
        solution (the warm start) alone."""
        time_limit_s, solution_limit = self.time_limit_s, self.solution_limit or None
        if self.replan_deadline is not None:
            left_s = self.replan_deadline - time.perf_counter()
            if left_s <= 0.0:
                solution_limit = 1
            elif time_limit_s is None or left_s < time_limit_s:
                time_limit_s = left_s
        return search_parameters(
            time_limit_s,
            "PARALLEL_CHEAPEST_INSERTION",
            "GUIDED_LOCAL_SEARCH" if self.solution_limit else "GREEDY_DESCENT",
            solution_limit=solution_limit,
        )

    def replan_model(
        self,
        problem: RideProblem,
        reward: RewardConfig,
        terms: ObjectiveTerms | None,
        warm_routes: list[list[int]],
    ) -> tuple[RideModel, Any | None]:
        """The re-plan's routing model (with ``terms``) and its solution from ``warm_routes``
        (None when it found none)."""
        model = RideModel(problem, reward, seed=self.seed, terms=terms)
        return model, model.solve(warm_routes, self.search_parameters())

    def _replan(self, env: DispatchEnv) -> None:
        sim = env.sim
        if isinstance(sim, StopDaySimulator):
            self._replan_stops(env, sim)
            return
        self.replans += 1
        problem = self.problem(sim)
        terms = self.objective_terms(env, problem)
        warm_routes = self._warm_routes(sim, problem)
        model, solution = self.replan_model(problem, env.config.reward, terms, warm_routes)
        if self.on_replan is not None:
            self.on_replan(env, problem, warm_routes, model, solution)
        self._keep_solution(sim, problem, model, solution)

    def _keep_solution(
        self, sim: DaySimulator, problem: RideProblem, model: RideModel, solution: Any | None
    ) -> None:
        """Remember a re-plan of ``problem`` (:meth:`_keep_plan`): its bookings not committed
        yet are the free ones."""
        fixed = {b for plan in problem.fixed for b in plan}
        free = [b for b in problem.bookings.tolist() if b not in fixed]
        self._keep_plan(sim, problem.bookings, free, model, solution)

    def _replan_stops(self, env: DispatchEnv, sim: StopDaySimulator) -> None:
        """The re-plan of a day of stops (:mod:`rldispatch.policies.stop_reopt`): shared
        rides, places by kind, ride limits and breaks, the drivers' stops locked."""
        self.replans += 1
        bookings = open_bookings_within(sim, self.horizon_min)
        model = StopRideModel(sim, bookings, env.config.reward, self.horizon_min)
        solution = model.solve(insertion_stops(sim, bookings), self.search_parameters())
        self._keep_plan(sim, bookings, bookings.tolist(), model, solution)

    def _keep_plan(
        self,
        sim: DaySimulator,
        known: np.ndarray,
        free: list[int],
        model: RideModel | StopRideModel,
        solution: Any | None,
    ) -> None:
        """Remember a re-plan: its moment, the bookings it knew, who each booking goes to and
        when, and how many of its ``free`` (not yet committed) bookings it leaves out."""
        self._planned_min = sim.now_min
        self._released_at_plan = int(np.sum(sim.status != UNRELEASED))
        self._assigned_at_plan = self._assigned(sim)
        seen_before = self._known
        self._known = set(known.tolist())
        self._solved = solution is not None
        self._driver_of, self._pickup_of = {}, {}
        if solution is None:
            self._routes = [[] for _ in range(sim.n_drivers)]
            self._left_out = len(free)
            return
        self._routes = model.booking_routes(solution)
        for driver, route in enumerate(self._routes):
            for booking in route:
                self._driver_of[booking] = driver
        self._pickup_of = model.planned_pickup_min(solution)
        self._left_out = sum(1 for b in free if b not in self._driver_of)
        if self.replan_deadline is not None and search_cut_short(model.routing):
            # A search stopped before its local optimum has not weighed the bookings new since
            # the previous re-plan that it left out: cheapest insertion takes them (_fallback).
            self.cut_short_replans += 1
            self._known = {b for b in self._known if b in seen_before or b in self._driver_of}
