"""Running policies on days: the same days for every policy, so results pair up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.sim.metrics import DayMetrics


def run_day(policy: Policy, env: DispatchEnv, scenario: Scenario) -> DayMetrics:
    """Play one day with ``policy`` and return its figures."""
    env.reset(options={"scenario": scenario})
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(policy.act(env))
    return env.metrics()


def evaluate_policy(
    policy: Policy,
    days: Sequence[Scenario],
    env_config: EnvConfig | None = None,
    progress: bool = False,
    label: str | None = None,
) -> list[DayMetrics]:
    """Play every day with ``policy``; one :class:`DayMetrics` per day, in order."""
    env = DispatchEnv(preset=None, scenarios=list(days), config=env_config)
    iterator = tqdm(days, desc=label or policy.name, unit="day", leave=False, disable=not progress)
    return [run_day(policy, env, scenario) for scenario in iterator]


def evaluate_policies(
    policies: Mapping[str, Policy],
    days: Sequence[Scenario],
    env_config: EnvConfig | None = None,
    progress: bool = False,
) -> dict[str, list[DayMetrics]]:
    """Play every day with every policy (paired: the same days, in the same order)."""
    return {
        name: evaluate_policy(policy, days, env_config, progress=progress, label=name)
        for name, policy in policies.items()
    }


def hindsight_metrics(
    days: Sequence[Scenario], time_limit_s: float = 20.0, progress: bool = False
) -> list[DayMetrics]:
    """The figures of each day's hindsight plan (every booking known from the start)."""
    from rldispatch.policies.hindsight import solve_scenario

    results = []
    for scenario in tqdm(days, desc="hindsight", unit="day", leave=False, disable=not progress):
        solved = solve_scenario(scenario, time_limit_s=time_limit_s)
        if solved.metrics is None:
            raise RuntimeError(f"hindsight: no plan found for day {scenario.name!r}")
        results.append(solved.metrics)
    return results


SUMMARY_FIGURES = ("reward", "completion_rate", "late_pickup_rate", "cancelled", "distance_km")


def summarise_days(days: Sequence[DayMetrics]) -> dict[str, float]:
    """Mean of each headline figure over ``days``."""
    return {name: float(np.mean([getattr(day, name) for day in days])) for name in SUMMARY_FIGURES}
