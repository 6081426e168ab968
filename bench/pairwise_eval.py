"""Evaluate a pairwise model against the heuristics on held-out days of unseen fleet sizes.

    .venv/bin/python bench/pairwise_eval.py --model runs/pairwise/best_model.safetensors \
        [--days 50] [--hindsight-days 50] [--hindsight-time-limit 10] \
        [--extra NAME=PATH ...] [--json runs/pairwise/heldout_report.json]

The days are :func:`rldispatch.training.fleet_days.held_out_days`: ``HELD_OUT_SEEDS``, fleets
of 7, 13 and 24 drivers (no training day has those sizes), the geneva preset's demand per
driver and urgent share. Every policy plays the same days, so the reward differences pair up:
the table shows each policy's mean and 95% CI, then the pairwise model's paired reward
difference to each heuristic (and to each ``--extra`` model), the paired completion and
late-pickup differences to the best heuristic, and the regret to the hindsight solver
(its reward minus the policy's, on the days it solved). Hindsight solutions are cached
next to the JSON report (``hindsight_cache.json``), keyed by day and time limit. Last, the
permutation check plays ``--permutation-days`` days twice, the second time with drivers and
bookings listed in a shuffled order, and counts the decisions whose chosen (driver id,
booking id) differ.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.report import build_report, format_table
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.sim.metrics import DayMetrics
from rldispatch.training.evaluation import evaluate_policy
from rldispatch.training.fleet_days import HELD_OUT_FLEET_SIZES, held_out_days

HEURISTICS = ("nearest", "insertion", "matching")


def hindsight_rewards(
    days: list, count: int, time_limit_s: float, cache_path: Path | None
) -> dict[str, float]:
    """Hindsight reward of the first ``count`` days, by day name (cached)."""
    from rldispatch.policies.hindsight import solve_scenario

    cache: dict[str, float] = {}
    if cache_path is not None and cache_path.exists():
        cache = json.loads(cache_path.read_text())
    results = {}
    for day in days[:count]:
        key = f"{day.name}@{time_limit_s:g}s"
        if key not in cache:
            solution = solve_scenario(day, time_limit_s=time_limit_s)
            if solution.metrics is None or not solution.feasible:
                continue
            cache[key] = solution.metrics.reward
            if cache_path is not None:
                atomic_write_json(cache_path, cache)
        results[day.name] = cache[key]
    return results


def regret(
    days: list, metrics: list[DayMetrics], hindsight: dict[str, float]
) -> dict[str, Any] | None:
    gaps = [
        hindsight[d.name] - m.reward
        for d, m in zip(days, metrics, strict=True)
        if d.name in hindsight
    ]
    if not gaps:
        return None
    return {"days": len(gaps), **mean_ci(gaps)}


def shuffled(scenario: Scenario, seed: int) -> Scenario:
    """The same day with its drivers and bookings listed in a random order."""
    rng = np.random.default_rng(seed)
    drivers = tuple(scenario.drivers[i] for i in rng.permutation(len(scenario.drivers)))
    bookings = tuple(scenario.bookings[i] for i in rng.permutation(len(scenario.bookings)))
    return replace(scenario, drivers=drivers, bookings=bookings)


def permutation_check(policy: PairwisePolicy, days: list[Scenario]) -> dict[str, Any]:
    """Play each day and a shuffled copy side by side; count the decisions whose chosen
    (driver id, booking id) differ."""
    decisions = mismatches = 0
    same_metrics = 0
    for index, day in enumerate(days):
        other = shuffled(day, index)
        config = EnvConfig(max_drivers=len(day.drivers))
        envs = [DispatchEnv(preset=None, scenario=s, config=config) for s in (day, other)]
        for env in envs:
            env.reset()
        terminated = False
        while not terminated:
            chosen = []
            for env, scenario in zip(envs, (day, other), strict=True):
                pair = policy.choose(env)
                chosen.append(
                    None
                    if pair is None
                    else (scenario.drivers[pair[0]].id, scenario.bookings[env.visible[pair[1]]].id)
                )
            decisions += 1
            mismatches += chosen[0] != chosen[1]
            flags = [env.step(policy.act(env))[2] for env in envs]
            terminated = all(flags)
            if flags[0] != flags[1]:
                mismatches += 1
                break
        first, second = (env.metrics().as_dict() for env in envs)
        # Equal up to the rounding of sums taken over bookings in another order.
        same_metrics += all(np.isclose(first[key], second[key], rtol=1e-9) for key in first)
    return {
        "days": len(days),
        "decisions": decisions,
        "mismatches": mismatches,
        "days_with_identical_metrics": same_metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/pairwise/best_model.safetensors")
    parser.add_argument("--name", default="pairwise")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--hindsight-days", type=int, default=50)
    parser.add_argument("--hindsight-time-limit", type=float, default=10.0)
    parser.add_argument("--permutation-days", type=int, default=10)
    parser.add_argument("--json", default="runs/pairwise/heldout_report.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    days = held_out_days(args.days)
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    policies: dict[str, Any] = {args.name: PairwisePolicy(load_pairwise_model(args.model))}
    for item in args.extra:
        name, path = item.split("=", 1)
        policies[name] = PairwisePolicy(load_pairwise_model(path), name=name)
    for name in HEURISTICS:
        policies[name] = make_baseline(name)

    results: dict[str, list[DayMetrics]] = {}
    seconds: dict[str, float] = {}
    for name, policy in policies.items():
        started = time.perf_counter()
        results[name] = evaluate_policy(policy, days, env_config, progress=True, label=name)
        seconds[name] = time.perf_counter() - started

    json_path = Path(args.json)
    cache = json_path.with_name("hindsight_cache.json") if args.json else None
    hindsight = (
        hindsight_rewards(days, args.hindsight_days, args.hindsight_time_limit, cache)
        if args.hindsight_days
        else {}
    )

    main_name = args.name
    pairs = [(main_name, other) for other in policies if other != main_name]
    report = build_report(
        "held-out geneva days, fleets of 7, 13 and 24 drivers",
        [day.name for day in days],
        results,
        pairs,
    )
    best = max(HEURISTICS, key=lambda name: report["policies"][name]["reward"]["mean"])
    report["paired_rates_vs_best_heuristic"] = {
        "heuristic": best,
        **{
            metric: paired_difference(
                [getattr(m, metric) for m in results[main_name]],
                [getattr(m, metric) for m in results[best]],
            )
            for metric in ("completion_rate", "late_pickup_rate")
        },
    }
    report["hindsight_regret"] = {name: regret(days, results[name], hindsight) for name in policies}
    report["hindsight_time_limit_s"] = args.hindsight_time_limit
    report["by_fleet_size"] = {
        str(size): {
            name: {
                metric: float(
                    np.mean(
                        [
                            getattr(m, metric)
                            for d, m in zip(days, ms, strict=True)
                            if len(d.drivers) == size
                        ]
                    )
                )
                for metric in ("reward", "completion_rate", "late_pickup_rate")
            }
            for name, ms in results.items()
        }
        for size in HELD_OUT_FLEET_SIZES
    }
    report["seconds"] = seconds
    if args.permutation_days:
        report["permutation_check"] = permutation_check(
            policies[main_name], days[: args.permutation_days]
        )

    print(format_table(report))
    rates = report["paired_rates_vs_best_heuristic"]
    for metric in ("completion_rate", "late_pickup_rate"):
        pair = rates[metric]
        low, high = pair["ci95"]
        print(
            f"{main_name}_vs_{best} {metric}: {pair['reward_diff_mean']:+.4f} "
            f"(95% CI {low:+.4f} to {high:+.4f})"
        )
    print(f"\nregret to the hindsight solver ({args.hindsight_time_limit:g} s per day):")
    for name, item in report["hindsight_regret"].items():
        if item is None:
            continue
        low, high = item["ci95"]
        interval = f"95% CI {low:.1f} to {high:.1f}, {item['days']} days"
        print(f"  {name:12s} {item['mean']:7.1f}  ({interval})")
    print("\nmean reward / completion / late by fleet size:")
    for size, by_policy in report["by_fleet_size"].items():
        cells = "  ".join(
            f"{name} {v['reward']:.0f}/{v['completion_rate']:.3f}/{v['late_pickup_rate']:.3f}"
            for name, v in by_policy.items()
        )
        print(f"  {size:>2} drivers: {cells}")
    if "permutation_check" in report:
        check = report["permutation_check"]
        print(
            f"\npermutation check: {check['days']} days played twice, drivers and bookings "
            f"shuffled: {check['mismatches']} of {check['decisions']} chosen (driver, booking) "
            f"pairs differ; identical day metrics on {check['days_with_identical_metrics']} days"
        )
    if args.json:
        atomic_write_json(json_path, report)
        print(f"\nreport: {json_path}")


if __name__ == "__main__":
    main()
