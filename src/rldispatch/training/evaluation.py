"""Running policies on days: the same days for every policy, so results pair up.

Days are independent, so :func:`evaluate_policies` and :func:`hindsight_results` can spread
them over processes (``jobs``, :mod:`rldispatch.parallel`): each policy's days go
in blocks of consecutive days, each block to a fresh copy of the policy, and the results come
back in day order, identical to one process. A policy that carries state from one day to the
next (``carries_state_across_days = True``, e.g. the random policy's generator) plays all its
days in one block, and its state comes back to the caller's copy, so a second call carries on
from where the first stopped as it does in one process.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.parallel import parallel_map
from rldispatch.policies.base import Policy
from rldispatch.rewards import RewardConfig
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.noise import Uncertainty, day_draws, realised_day

BLOCKS_PER_JOB = 4
"""Blocks of days per process and policy: small enough to balance the load."""


@dataclass(frozen=True)
class PlayedDay(DayMetrics):
    """A day's figures, with what the policy did: each driver's served bookings in order
    (indices into the scenario's bookings) and the wall time of each decision, in ms (a
    measurement, left out of comparisons and of :meth:`as_dict`)."""

    routes: tuple[tuple[int, ...], ...] = ()
    decision_ms: tuple[float, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in DayMetrics.__dataclass_fields__}


def run_day(policy: Policy, env: DispatchEnv, scenario: Scenario) -> PlayedDay:
    """Play one day with ``policy`` and return its figures, routes and decision times."""
    env.reset(options={"scenario": scenario})
    terminated = False
    decision_ms = []
    clock = time.perf_counter
    while not terminated:
        started = clock()
        action = policy.act(env)
        decision_ms.append((clock() - started) * 1000.0)
        _, _, terminated, _, _ = env.step(action)
    routes = tuple(tuple(route) for route in env.sim.served_routes())
    return PlayedDay(**env.metrics().as_dict(), routes=routes, decision_ms=tuple(decision_ms))


def _play_block(
    task: tuple[Policy | bytes, list[Scenario], EnvConfig | None],
) -> tuple[list[PlayedDay], bytes | None]:
    """Play a block of days; with a pickled policy that carries state across days, also
    return its state after the block (pickled) for the caller's copy."""
    policy, days, env_config = task
    pickled = isinstance(policy, bytes)
    if pickled:
        policy = pickle.loads(policy)
    env = DispatchEnv(preset=None, scenarios=days, config=env_config)
    played = [run_day(policy, env, scenario) for scenario in days]
    carried = pickled and getattr(policy, "carries_state_across_days", False)
    return played, pickle.dumps(vars(policy)) if carried else None


def _blocks(policy: Policy, count: int, jobs: int) -> list[range]:
    if count == 0:
        return []
    if jobs == 1 or getattr(policy, "carries_state_across_days", False):
        return [range(count)]
    size = max(1, math.ceil(count / (jobs * BLOCKS_PER_JOB)))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def evaluate_policy(
    policy: Policy,
    days: Sequence[Scenario],
    env_config: EnvConfig | None = None,
    progress: bool = False,
    label: str | None = None,
    jobs: int = 1,
) -> list[PlayedDay]:
    """Play every day with ``policy``; one :class:`PlayedDay` per day, in order."""
    return evaluate_policies({label or policy.name: policy}, days, env_config, progress, jobs)[
        label or policy.name
    ]


def evaluate_policies(
    policies: Mapping[str, Policy],
    days: Sequence[Scenario],
    env_config: EnvConfig | Mapping[str, EnvConfig | None] | None = None,
    progress: bool = False,
    jobs: int = 1,
) -> dict[str, list[PlayedDay]]:
    """Play every day with every policy (paired: the same days, in the same order), over
    ``jobs`` processes. ``env_config`` is one config for every policy, or each policy's own
    by name (a learned model plays in the env shape it was trained for)."""
    days = list(days)
    tasks, owners = [], []
    for name, policy in policies.items():
        config = env_config.get(name) if isinstance(env_config, Mapping) else env_config
        # Plain pickle, once per policy: the process pool's own pickler moves PyTorch tensors
        # into shared memory, which leaves NumPy views of their old memory (a learned
        # policy's forward pass) pointing at freed memory.
        payload = pickle.dumps(policy) if jobs > 1 else policy
        for block in _blocks(policy, len(days), jobs):
            tasks.append((payload, [days[k] for k in block], config))
            owners.append(name)
    label = next(iter(policies)) if len(policies) == 1 else "policies"
    played = parallel_map(_play_block, tasks, jobs, progress, label=label, unit="block")
    results: dict[str, list[PlayedDay]] = {name: [] for name in policies}
    for name, (block, state) in zip(owners, played, strict=True):
        results[name].extend(block)
        if state is not None:
            vars(policies[name]).update(pickle.loads(state))
    return results


def _solve_hindsight(
    task: tuple[
        Scenario, float, Sequence[Sequence[int]] | None, RewardConfig | None, Uncertainty | None
    ],
) -> Any:
    from rldispatch.policies.hindsight import solve_scenario

    scenario, time_limit_s, initial_routes, reward, uncertainty = task
    if uncertainty is None:
        return solve_scenario(
            scenario, time_limit_s=time_limit_s, reward=reward, initial_routes=initial_routes
        )
    realised, travel_factor, shown = realised_day(scenario, day_draws(uncertainty, scenario))
    index_of = {int(old): new for new, old in enumerate(shown.tolist())}
    start = None
    if initial_routes is not None:  # the played plan without its no-shows
        start = [[index_of[b] for b in route if b in index_of] for route in initial_routes]
    result = solve_scenario(
        realised,
        time_limit_s=time_limit_s,
        reward=reward,
        initial_routes=start,
        travel_factor=travel_factor,
    )
    if result.metrics is None:
        return result
    # The no-shows were bookings all the same: dispatched (their bonus, as an online policy
    # earns it) but not served; the figures count every booking of the day.
    no_shows = len(scenario.bookings) - len(realised.bookings)
    figures = result.metrics
    metrics = replace(
        figures,
        reward=figures.reward + (reward or RewardConfig()).assignment_bonus * no_shows,
        completion_rate=figures.served / max(len(scenario.bookings), 1),
        bookings=len(scenario.bookings),
        no_shows=no_shows,
    )
    return replace(result, metrics=metrics)


def hindsight_results(
    days: Sequence[Scenario],
    time_limit_s: float = 20.0,
    progress: bool = False,
    initial_routes: Sequence[Sequence[Sequence[int]] | None] | None = None,
    jobs: int = 1,
    reward: RewardConfig | None = None,
    uncertainty: Uncertainty | None = None,
) -> list[Any]:
    """The hindsight plan of each day (every booking known from the start), over ``jobs``
    processes; ``initial_routes[k]`` (optional) is a plan of day ``k`` to start from;
    ``reward``: the weights it is solved and scored under (default: the defaults); with
    ``uncertainty``, solved on each realised day (:func:`rldispatch.sim.noise.realised_day`:
    the no-shows left out, legs and service as they took)."""
    starts = list(initial_routes) if initial_routes is not None else [None] * len(days)
    tasks = [
        (day, time_limit_s, start, reward, uncertainty)
        for day, start in zip(days, starts, strict=True)
    ]
    solved = parallel_map(_solve_hindsight, tasks, jobs, progress, label="hindsight", unit="day")
    for scenario, result in zip(days, solved, strict=True):
        if result.metrics is None:
            raise RuntimeError(f"hindsight: no plan found for day {scenario.name!r}")
    return solved


def hindsight_metrics(
    days: Sequence[Scenario],
    time_limit_s: float = 20.0,
    progress: bool = False,
    initial_routes: Sequence[Sequence[Sequence[int]] | None] | None = None,
    jobs: int = 1,
) -> list[DayMetrics]:
    """The figures of each day's hindsight plan (see :func:`hindsight_results`)."""
    solved = hindsight_results(days, time_limit_s, progress, initial_routes, jobs)
    return [result.metrics for result in solved]


SUMMARY_FIGURES = ("reward", "completion_rate", "late_pickup_rate", "cancelled", "distance_km")


def summarise_days(days: Sequence[DayMetrics]) -> dict[str, float]:
    """Mean of each headline figure over ``days``."""
    return {name: float(np.mean([getattr(day, name) for day in days])) for name in SUMMARY_FIGURES}
