"""Evaluate a pairwise model against the heuristics on held-out days of unseen fleet sizes.

    .venv/bin/python bench/pairwise_eval.py --model runs/pairwise/best_model.safetensors \
        [--days 50] [--hindsight-days 50] [--hindsight-time-limit 10] \
        [--extra NAME=PATH ...] [--lookahead N] [--jobs 2] \
        [--json runs/pairwise/heldout_report.json]

The days are :func:`rldispatch.scenarios.fleet_days.held_out_days`: ``HELD_OUT_SEEDS``, fleets
of 7, 13 and 24 drivers (no training day has those sizes), the geneva preset's demand per
driver and urgent share. Every policy plays the same days, so the reward differences pair up:
the table shows each policy's mean and 95% CI, then the pairwise model's paired reward
difference to each heuristic (and to each ``--extra`` model), the paired completion and
late-pickup differences to the best heuristic, and the regret to the hindsight solver
(its reward minus the policy's, on the days it solved). Each day's hindsight search
starts from the plan of the policy that scored best that day, so no policy played can beat
it (the report counts the days one did, ``hindsight_beaten``); solutions are cached next to
the JSON report (``hindsight_cache.json``), keyed by day, time limit and start plan.
``--lookahead N`` adds the model with the lookahead expert (``evaluate --lookahead``), so its
regret is to a plan started from its routes where they were best. ``--jobs`` spreads the days
(and the hindsight solves) over processes. ``--reopt-report`` adds ``reopt``'s figures, routes
and decision times from a ``bench/reopt_eval.py`` report of the same days (reopt costs about a
minute per day). Last, the permutation check plays ``--permutation-days`` days twice, the
second time with drivers and bookings listed in a shuffled order, and counts the decisions
whose chosen (driver id, booking id) differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rldispatch.agents.pairwise.lookahead import LookaheadPolicy
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.network import NumpyPairQ
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.report import (
    build_report,
    decision_time_summary,
    format_table,
    hindsight_beaten,
)
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.scenarios.fleet_days import HELD_OUT_FLEET_SIZES, held_out_days
from rldispatch.sim.metrics import DayMetrics
from rldispatch.training.evaluation import PlayedDay, evaluate_policy, hindsight_results

HEURISTICS = ("nearest", "insertion", "matching")


def best_online_routes(days: list, results: dict[str, list[PlayedDay]]) -> list:
    """Per day, the routes of the policy that scored best on it (the hindsight search's
    start, so the hindsight plan is never below any policy played)."""
    starts = []
    for k in range(len(days)):
        played = [name for name in results if results[name][k].routes]
        best = max(played, key=lambda name: results[name][k].reward, default=None)
        starts.append(results[best][k].routes if best is not None else None)
    return starts


def hindsight_days(
    days: list, starts: list, count: int, time_limit_s: float, jobs: int, cache_path: Path | None
) -> dict[str, DayMetrics]:
    """Figures of the hindsight plan of the first ``count`` days, by day name, each search
    started from ``starts[k]``; cached by day, time limit and start."""
    cache: dict[str, dict] = {}
    if cache_path is not None and cache_path.exists():
        cache = json.loads(cache_path.read_text())

    def key(day: Scenario, start: Any) -> str:
        digest = hashlib.sha256(json.dumps(start).encode()).hexdigest()[:16]
        return f"{day.name}@{time_limit_s:g}s@{digest}"

    todo = [k for k in range(min(count, len(days))) if key(days[k], starts[k]) not in cache]
    if todo:
        solved = hindsight_results(
            [days[k] for k in todo],
            time_limit_s,
            progress=True,
            initial_routes=[starts[k] for k in todo],
            jobs=jobs,
        )
        for k, result in zip(todo, solved, strict=True):
            cache[key(days[k], starts[k])] = result.metrics.as_dict()
        if cache_path is not None:
            atomic_write_json(cache_path, cache)
    return {
        days[k].name: DayMetrics(**cache[key(days[k], starts[k])])
        for k in range(min(count, len(days)))
    }


def reopt_days(path: Path, days: list) -> tuple[list[PlayedDay], list[float]]:
    """``reopt``'s figures on ``days`` and its decision times, read from the report of
    ``bench/reopt_eval.py`` (which played the same held-out days, in the same order)."""
    report = json.loads(path.read_text())
    by_day = {item["day"]: item for item in report["per_day"]["reopt"]}
    missing = [day.name for day in days if day.name not in by_day]
    if missing:
        raise SystemExit(
            f"--reopt-report: {path} has no reopt figures for {len(missing)} of the days "
            f"(first: {missing[0]}); run bench/reopt_eval.py with at least --days {len(days)}"
        )
    played = []
    for day in days:
        item = dict(by_day[day.name])
        item.pop("day")
        routes = tuple(tuple(route) for route in item.pop("routes"))
        played.append(PlayedDay(**item, routes=routes))
    return played, report["decision_ms"]["reopt"]


def regret(
    days: list, metrics: list[DayMetrics], hindsight: dict[str, DayMetrics]
) -> dict[str, Any] | None:
    gaps = [
        hindsight[d.name].reward - m.reward
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default="runs/pairwise/best_model.safetensors")
    parser.add_argument("--name", default="pairwise")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--hindsight-days", type=int, default=50)
    parser.add_argument("--hindsight-time-limit", type=float, default=10.0)
    parser.add_argument("--permutation-days", type=int, default=10)
    parser.add_argument(
        "--reopt-report",
        type=Path,
        metavar="JSON",
        help="add reopt's figures from a bench/reopt_eval.py report of the same days",
    )
    parser.add_argument("--lookahead", type=int, default=0, metavar="N")
    parser.add_argument("--jobs", type=int, default=1, help="processes for days and solves")
    parser.add_argument("--json", default="runs/pairwise/heldout_report.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    days = held_out_days(args.days)
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    loaded = load_pairwise_model(args.model)
    policies: dict[str, Any] = {args.name: PairwisePolicy(loaded)}
    if args.lookahead:
        policies[f"{args.name}+lookahead"] = LookaheadPolicy(
            NumpyPairQ(loaded.network), args.lookahead, loaded.metadata.candidates_per_booking
        )
    for item in args.extra:
        name, path = item.split("=", 1)
        policies[name] = PairwisePolicy(load_pairwise_model(path), name=name)
    for name in HEURISTICS:
        policies[name] = make_baseline(name)

    results: dict[str, list[PlayedDay]] = {}
    seconds: dict[str, float] = {}
    for name, policy in policies.items():
        started = time.perf_counter()
        results[name] = evaluate_policy(
            policy, days, env_config, progress=True, label=name, jobs=args.jobs
        )
        seconds[name] = time.perf_counter() - started
    reopt_decision_ms: list[float] = []
    if args.reopt_report:
        results["reopt"], reopt_decision_ms = reopt_days(args.reopt_report, days)

    json_path = Path(args.json)
    cache = json_path.with_name("hindsight_cache.json") if args.json else None
    hindsight = (
        hindsight_days(
            days,
            best_online_routes(days, results),
            args.hindsight_days,
            args.hindsight_time_limit,
            args.jobs,
            cache,
        )
        if args.hindsight_days
        else {}
    )

    main_name = args.name
    pairs = [(main_name, other) for other in results if other != main_name]
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
    report["hindsight_regret"] = {name: regret(days, results[name], hindsight) for name in results}
    report["hindsight_time_limit_s"] = args.hindsight_time_limit
    if hindsight:
        solved = [k for k, day in enumerate(days) if day.name in hindsight]
        report["hindsight_beaten"] = hindsight_beaten(
            {name: [ms[k] for k in solved] for name, ms in results.items()},
            [hindsight[days[k].name] for k in solved],
        )
    timing = decision_time_summary(results)
    if reopt_decision_ms:
        values = np.asarray(reopt_decision_ms)
        timing["reopt"] = {
            "mean": float(values.mean()),
            "p99": float(np.percentile(values, 99)),
            "decisions": int(values.size),
        }
    report["decision_time_ms"] = timing
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
        if any(len(day.drivers) == size for day in days)
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
    if "hindsight_beaten" in report:
        beaten = report["hindsight_beaten"]
        print(
            f"  an online policy beat the hindsight plan on {beaten['days']} of "
            f"{beaten['of_days']} days (largest margin {beaten['max_margin']:.1f})"
        )
    print("\ndecision time (ms, mean / p99):")
    for name, item in report["decision_time_ms"].items():
        print(
            f"  {name:12s} {item['mean']:8.2f} / {item['p99']:8.2f}  "
            f"({item['decisions']} decisions)"
        )
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
