"""When ``reopt`` commits: its plan's bookings committed as soon as planned (``reopt``) against
committed only once their planned pickup is at most T minutes ahead, on training days.

    .venv/bin/python bench/reopt_commit_timing.py --within 15,30,60 --lausanne-days 6 \
        --geneva-days 6 --jobs 2

Days: ``lausanne`` preset days and geneva-style days of 5 to 10 drivers with ``--demand``
(0.8 to 1.6 by default) times the preset's demand, both from ``TRAINING_SEEDS`` (never the
held-out days). Prints each variant's mean reward, completion, late share and decisions and its
paired difference to ``reopt``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rldispatch.env import EnvConfig
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.reports.stats import paired_difference
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.scenarios.presets import TRAINING_SEEDS, make_lausanne
from rldispatch.training.evaluation import evaluate_policies
from rldispatch.training.threads import single_threaded_numerics

TRAINING_FLEETS = (5, 6, 8, 9, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--within", default="15,30,60", help="comma-separated minutes")
    parser.add_argument("--lausanne-days", type=int, default=6)
    parser.add_argument("--geneva-days", type=int, default=6)
    parser.add_argument("--first-day", type=int, default=0)
    parser.add_argument(
        "--overloaded",
        default="",
        help="comma-separated n: also each T holding back only while the plan leaves at least "
        "n known bookings out",
    )
    parser.add_argument("--demand", default="0.8,1.6", help="geneva days' demand factors, low,high")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    single_threaded_numerics(1)
    policies = {"reopt": ReoptPolicy()}
    for value in args.within.split(","):
        policies[f"within {value}"] = ReoptPolicy(commit_within_min=float(value))
        for left_out in args.overloaded.split(",") if args.overloaded else ():
            policies[f"within {value}, overloaded {left_out}"] = ReoptPolicy(
                commit_within_min=float(value),
                hold_only_if_overloaded=True,
                overload_left_out=int(left_out),
            )
    low, high = (float(v) for v in args.demand.split(","))
    distribution = FleetDayDistribution(fleet_sizes=TRAINING_FLEETS, demand_factors=(low, high))
    first = args.first_day
    sets = {
        "lausanne": [
            make_lausanne(TRAINING_SEEDS[k]) for k in range(first, first + args.lausanne_days)
        ],
        "geneva": distribution.days(first, args.geneva_days),
    }
    for label, days in sets.items():
        if not days:
            continue
        started = time.perf_counter()
        config = EnvConfig(max_drivers=max(len(day.drivers) for day in days))
        results = evaluate_policies(policies, days, config, jobs=args.jobs)
        print(f"\n{label}: {len(days)} days ({time.perf_counter() - started:.0f} s)")
        base = [d.reward for d in results["reopt"]]
        for name, played in results.items():
            rewards = [d.reward for d in played]
            line = (
                f"  {name:>24}: reward {np.mean(rewards):.1f}, completion "
                f"{np.mean([d.completion_rate for d in played]):.1%}, late "
                f"{np.mean([d.late_pickup_rate for d in played]):.1%}, decisions "
                f"{np.mean([d.decisions for d in played]):.0f}"
            )
            if name != "reopt":
                pair = paired_difference(rewards, base)
                low, high = pair["ci95"]
                line += f", - reopt {pair['reward_diff_mean']:+.1f} ({low:+.1f} to {high:+.1f})"
                gaps = (f"{a - b:+.0f}" for a, b in zip(rewards, base, strict=True))
                line += " per day " + " ".join(gaps)
            print(line, flush=True)


if __name__ == "__main__":
    main()
