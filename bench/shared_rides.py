"""Shared rides on held-out geneva-mix days: occupancy, shared-ride share, ride time over the
direct time, breaks, and the validator's counts, per policy on the same days, with paired
reward differences between them.

    python bench/shared_rides.py [--days 50] [--first-day 0]
                                 [--policies nearest insertion matching reopt]
                                 [--model NAME=FILE.safetensors ...] [--lookahead 3]
                                 [--also EARLIER.json ...] [--json OUT]

``--model`` plays a pairwise model file beside the baselines (``--lookahead N`` also plays its
lookahead over N candidates); ``--also`` reads the per-day figures of an earlier run's JSON
(e.g. ``reopt`` on fewer days) and pairs them with this run's on the days both played.
Each played day is checked by ``rldispatch.sim.validator.check_played_day``; the counts of
bookings in a vehicle without their kind of place, rides over their limit and missed breaks
are summed over the days (0 on every line when the simulator keeps its rules).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from rldispatch.cli.common import env_config_for
from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import run_day

FIGURES = (
    "reward",
    "completion_rate",
    "late_pickup_rate",
    "occupancy",
    "shared_ride_share",
    "ride_time_ratio",
)
COUNTS = ("wrong_place", "max_ride_violations", "missed_breaks", "breaks_taken")


def summarise(per_day: list[dict[str, float]]) -> dict[str, Any]:
    """Mean figures of a policy's days (reward with its 95% CI) and the validator's counts
    summed."""
    summary: dict[str, Any] = {
        key: float(np.mean([row[key] for row in per_day])) for key in FIGURES
    }
    summary["reward_ci95"] = mean_ci([row["reward"] for row in per_day])["ci95"]
    summary.update({key: int(sum(row[key] for row in per_day)) for key in COUNTS})
    summary["days"] = len(per_day)
    return summary


def play_policy(policy: Policy, days: list, seeds: list[int]) -> dict[str, Any]:
    """One policy over the days: :func:`summarise`, decision times and each day's figures."""
    env = DispatchEnv(env_config_for(days))
    per_day: list[dict[str, float]] = []
    decision_ms: list[float] = []
    for seed, day in zip(seeds, days, strict=True):
        played = run_day(policy, env, day)
        check = check_played_day(env.sim)
        row = {"seed": seed, **{key: float(getattr(played, key)) for key in FIGURES}}
        row["wrong_place"] = check.wrong_place + check.too_many_on_board
        row["max_ride_violations"] = check.max_ride_violations
        row["missed_breaks"] = check.missed_breaks
        row["breaks_taken"] = played.breaks_taken
        per_day.append(row)
        decision_ms.extend(played.decision_ms)
    return {
        **summarise(per_day),
        "decision_ms_mean": float(np.mean(decision_ms)) if decision_ms else 0.0,
        "decision_ms_p99": float(np.percentile(decision_ms, 99)) if decision_ms else 0.0,
        "per_day": per_day,
    }


def line(name: str, row: dict[str, Any]) -> str:
    """One line of the table."""
    low, high = row["reward_ci95"]
    times = (
        f"{row['decision_ms_mean']:.1f}/{row['decision_ms_p99']:.1f}"
        if "decision_ms_mean" in row
        else "-"
    )
    return (
        f"{name:<18} {row['days']:4d} {row['reward']:8.1f} ±{(high - low) / 2:5.1f} "
        f"{row['completion_rate']:6.1%} {row['late_pickup_rate']:6.1%} {row['occupancy']:6.2f} "
        f"{row['shared_ride_share']:7.1%} {row['ride_time_ratio']:8.2f}  "
        f"{row['wrong_place']:11d}  {row['max_ride_violations']:10d}  "
        f"{row['missed_breaks']:13d}  {row['breaks_taken']:6d}  {times}"
    )


HEADER = (
    f"{'policy':<18} {'days':>4} {'reward':>8} {'95% CI':>6} {'done':>6} {'late':>6} "
    f"{'occup':>6} {'shared':>7} {'ride/dir':>8}  wrong-place  over-limit  missed-breaks  "
    "breaks  mean/p99 ms"
)


def make_policies(args: argparse.Namespace) -> dict[str, Policy]:
    """The baselines named, then each model (and its lookahead when asked), by name."""
    policies: dict[str, Policy] = {name: make_baseline(name) for name in args.policies}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--model: expected NAME=FILE, got {spec!r}")
        from rldispatch.agents.pairwise.lookahead import LookaheadPolicy
        from rldispatch.agents.pairwise.model_file import load_pairwise_model
        from rldispatch.agents.pairwise.network import NumpyPairQ
        from rldispatch.agents.pairwise.policy import PairwisePolicy

        loaded = load_pairwise_model(path)
        policies[name] = PairwisePolicy(loaded, name=name)
        if args.lookahead:
            policies[f"{name}+lookahead"] = LookaheadPolicy(
                NumpyPairQ(loaded.network),
                candidates=args.lookahead,
                candidates_per_booking=loaded.metadata.candidates_per_booking,
                name=f"{name}+lookahead",
            )
    return policies


def paired_rewards(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    """``first - second`` in reward on the days both played (None when fewer than 2)."""
    a = {row["seed"]: row["reward"] for row in first["per_day"]}
    b = {row["seed"]: row["reward"] for row in second["per_day"]}
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return None
    pair = paired_difference([a[s] for s in common], [b[s] for s in common])
    return {**pair, "days": len(common)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--first-day", type=int, default=0, help="offset into HELD_OUT_SEEDS")
    parser.add_argument(
        "--policies", nargs="*", default=["nearest", "insertion", "matching", "reopt"]
    )
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--lookahead", type=int, default=0, metavar="N")
    parser.add_argument("--also", action="append", default=[], metavar="EARLIER.json")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seeds = [HELD_OUT_SEEDS[args.first_day + k] for k in range(args.days)]
    days = [make_preset("geneva-mix", seed) for seed in seeds]
    report: dict[str, Any] = {"preset": "geneva-mix", "seeds": seeds, "policies": {}}
    print(HEADER, flush=True)
    rows: dict[str, dict[str, Any]] = {}
    if days:
        for name, policy in make_policies(args).items():
            started = time.perf_counter()
            row = play_policy(policy, days, seeds)
            row["seconds"] = time.perf_counter() - started
            rows[name] = row
            print(line(name, row), flush=True)
            report["policies"] = dict(rows)
            if args.json:  # after each policy: a run stopped early keeps what it played
                atomic_write_json(args.json, report)
    played_here = set(rows)
    for path in args.also:  # an earlier run's days; several runs of one policy add up
        with open(path, encoding="utf-8") as file:
            earlier = json.load(file)
        for name, row in earlier["policies"].items():
            if name in played_here or "per_day" not in row:
                continue
            per_day = rows[name]["per_day"] + row["per_day"] if name in rows else row["per_day"]
            rows[name] = {**summarise(per_day), "per_day": per_day}
    if args.also:
        print("with the days of " + ", ".join(args.also))
        for name, row in rows.items():
            print(line(name, row))
    differences = {}
    names = list(rows)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            pair = paired_rewards(rows[first], rows[second])
            if pair is None:
                continue
            low, high = pair["ci95"]
            differences[f"{first} - {second}"] = pair
            print(
                f"{first} - {second}: {pair['reward_diff_mean']:+.1f} per day "
                f"(95% CI {low:+.1f} to {high:+.1f}, p = {pair['p_value']:.2g}, "
                f"{pair['days']} days)"
            )
    report["policies"] = rows
    report["paired_reward_differences"] = differences
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
