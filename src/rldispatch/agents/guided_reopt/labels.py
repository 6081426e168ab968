"""Labels of visited states: the full-information plan of the rest of the day, mapped onto
the decisions open at that state.

At a labelled state the rest of the day is planned with every booking known, those not yet
released included (:func:`rldispatch.policies.reopt.state_problem` with ``unreleased``), by
the hindsight solver's routing model (:class:`rldispatch.policies.ride_model.RideModel`,
exact lateness) and its guided local search, warm-started from the re-plan the policy made
there. The budget is ``solution_limit`` solutions (the same labels on any machine) under a
wall-clock cap.

The plan is then read as the state's decisions. Along each driver's route, the free bookings
of the re-plan's problem that come before the first booking not yet released are *now*: the
full-information plan serves them with that driver, and nothing unknown today comes first. A
free booking it serves after an unknown booking is *later* and carries no label (whether to
commit it now depends on what is not known yet); one it never serves should be left out of
the plan. The last booking of the problem on each route (or none: the driver's start) is
where that driver's re-plan should end: bookings not yet known are skipped, so the end is
comparable with the re-plan's, which knows none of them.

Labels are written to a disk cache keyed by the state (day, clock, each booking's status,
the plans) and the budget; a state seen again is not solved again.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from rldispatch.files import atomic_write_json
from rldispatch.policies.reopt import state_problem
from rldispatch.policies.ride_model import RideModel
from rldispatch.policies.routing import search_parameters
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import UNRELEASED, DaySimulator

LABEL_VERSION = 2


@dataclass(frozen=True)
class StateLabel:
    """What the full-information plan says at a state.

    :param now: free bookings of the re-plan's problem it serves with nothing unknown today
        before them on their driver's route: assign now.
    :param later: free bookings it serves after a booking not yet known: no label (whether
        to commit them now depends on what is not known yet).
    :param driver_of: the plan's driver of each booking of ``now`` and ``later``.
    :param end_booking: per driver, the last booking of the re-plan's problem on its route
        (-1: none), where the re-plan's plan for that driver should end.
    """

    now: tuple[int, ...]
    later: tuple[int, ...]
    driver_of: dict[int, int]
    end_booking: tuple[int, ...]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["driver_of"] = {str(k): v for k, v in self.driver_of.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> StateLabel:
        return cls(
            now=tuple(int(b) for b in data["now"]),
            later=tuple(int(b) for b in data["later"]),
            driver_of={int(k): int(v) for k, v in data["driver_of"].items()},
            end_booking=tuple(int(b) for b in data["end_booking"]),
        )


@dataclass(frozen=True)
class LabelBudget:
    """The search of a state's full-information plan."""

    solution_limit: int = 60
    time_limit_s: float = 2.0


def map_plan(
    sim: DaySimulator, problem_bookings: np.ndarray, fixed: set[int], routes: list[list[int]]
) -> StateLabel:
    """A full-information plan (booking routes) read as the state's decisions (see the
    module docstring)."""
    in_problem = set(np.asarray(problem_bookings).tolist())
    now, later, driver_of, ends = [], [], {}, []
    for driver, route in enumerate(routes):
        end, unknown_before = -1, False
        for booking in route:
            if sim.status[booking] == UNRELEASED:
                unknown_before = True
                continue
            if booking not in in_problem:
                continue
            end = booking
            if booking not in fixed:
                (later if unknown_before else now).append(booking)
                driver_of[booking] = driver
        ends.append(end)
    return StateLabel(tuple(sorted(now)), tuple(sorted(later)), driver_of, tuple(ends))


def full_information_routes(
    sim: DaySimulator,
    reward: RewardConfig,
    warm_routes: list[list[int]],
    budget: LabelBudget,
) -> list[list[int]]:
    """The rest of the day planned with every booking known, from ``warm_routes``."""
    problem = state_problem(sim, unreleased=True)
    model = RideModel(problem, reward)
    params = search_parameters(
        budget.time_limit_s,
        "PARALLEL_CHEAPEST_INSERTION",
        "GUIDED_LOCAL_SEARCH",
        solution_limit=budget.solution_limit,
    )
    solution = model.solve(warm_routes, params)
    if solution is None:
        return [list(route) for route in warm_routes]
    return model.booking_routes(solution)


def label_state(
    sim: DaySimulator,
    problem_bookings: np.ndarray,
    reward: RewardConfig,
    warm_routes: list[list[int]],
    budget: LabelBudget,
) -> StateLabel:
    """The label of one state (``problem_bookings``: the re-plan's bookings there)."""
    fixed = {b for plan in sim.plans for b in plan}
    routes = full_information_routes(sim, reward, warm_routes, budget)
    return map_plan(sim, problem_bookings, fixed, routes)


def state_key(sim: DaySimulator, budget: LabelBudget, reward: RewardConfig) -> str:
    """The cache key of a state's label."""
    digest = hashlib.sha256()
    digest.update(json.dumps([LABEL_VERSION, sim.scenario.name, asdict(budget)]).encode())
    digest.update(json.dumps(asdict(reward), sort_keys=True).encode())
    digest.update(np.float64(sim.now_min).tobytes())
    digest.update(np.asarray(sim.status, dtype=np.int64).tobytes())
    digest.update(np.asarray(sim.assigned_driver, dtype=np.int64).tobytes())
    digest.update(json.dumps([list(map(int, plan)) for plan in sim.plans]).encode())
    day = (sim.release_min, sim.requested_min, sim.pickup_xy.ravel(), sim.shift_end_min)
    digest.update(np.concatenate(day).astype(np.float64).tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class LabelRequest:
    """One state to label (pickled to a worker process)."""

    sim: DaySimulator
    problem_bookings: np.ndarray
    warm_routes: list[list[int]]


class Labeller:
    """Labels states with a disk cache, over ``jobs`` processes.

    :param cache_dir: the cache folder (None: no cache).
    """

    def __init__(
        self,
        reward: RewardConfig,
        budget: LabelBudget,
        jobs: int = 1,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.reward = reward
        self.budget = budget
        self.jobs = int(jobs)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.solved = 0
        self.cached = 0

    def _path(self, request: LabelRequest) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{state_key(request.sim, self.budget, self.reward)}.json"

    def label(self, requests: list[LabelRequest]) -> list[StateLabel]:
        """The label of each request, in order."""
        labels: list[StateLabel | None] = [None] * len(requests)
        todo = []
        for k, request in enumerate(requests):
            path = self._path(request)
            if path is not None and path.exists():
                try:
                    labels[k] = StateLabel.from_dict(json.loads(path.read_text()))
                    self.cached += 1
                    continue
                except (OSError, ValueError, KeyError, TypeError):
                    pass
            todo.append(k)
        arguments = [
            (
                requests[k].sim,
                requests[k].problem_bookings,
                self.reward,
                requests[k].warm_routes,
                self.budget,
            )
            for k in todo
        ]
        if self.jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(self.jobs, mp_context=get_context("fork")) as pool:
                solved = list(pool.map(_label_arguments, arguments))
        else:
            solved = [_label_arguments(item) for item in arguments]
        for k, label in zip(todo, solved, strict=True):
            labels[k] = label
            self.solved += 1
            path = self._path(requests[k])
            if path is not None:
                atomic_write_json(path, label.to_dict())
        return [label for label in labels if label is not None]


def _label_arguments(arguments: tuple) -> StateLabel:
    return label_state(*arguments)
