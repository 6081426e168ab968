"""Re-optimisation (``reopt``) against batch matching on held-out days of unseen fleet sizes.

    nice -n 10 .venv/bin/python bench/reopt_eval.py [--days 50] [--minutes 25] \
        [--json runs/reopt_eval.json]

The days are :func:`rldispatch.scenarios.fleet_days.held_out_days` (as in
``bench/pairwise_eval.py``): ``HELD_OUT_SEEDS``, fleets of 7, 13 and 24 drivers in turn, the
geneva preset's demand per driver and urgent share. Both policies play each day in turn, in
this one process (one core); after ``--minutes`` no new day is started, and the report says
how many were played. It prints the paired reward difference (reopt minus matching) with its
95% CI, overall and per fleet size, and reopt's decision time (mean and p99 over all its
decisions; matching's for reference). The JSON report keeps each day's figures and routes and
every decision time, so a later run (``bench/pairwise_eval.py --reopt-report``) can pair with them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from report_file import write_report
from variants import ci_text

from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.report import decision_time_summary
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.scenarios.fleet_days import HELD_OUT_FLEET_SIZES, held_out_days
from rldispatch.training.evaluation import PlayedDay, evaluate_policy

POLICIES = ("reopt", "matching")


def summary(days: list, results: dict[str, list[PlayedDay]]) -> dict:
    """Paired reward difference, each policy's mean reward and decision times."""
    return {
        "days": len(days),
        "reopt_vs_matching": paired_difference(
            [m.reward for m in results["reopt"]], [m.reward for m in results["matching"]]
        ),
        "reward": {name: mean_ci([m.reward for m in results[name]]) for name in POLICIES},
        "completion_rate": {
            name: float(np.mean([m.completion_rate for m in results[name]])) for name in POLICIES
        },
        "decision_time_ms": decision_time_summary(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--json", default="runs/reopt_eval.json")
    args = parser.parse_args()

    days = held_out_days(args.days)
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    policies = {name: make_baseline(name) for name in POLICIES}
    results: dict[str, list[PlayedDay]] = {name: [] for name in POLICIES}
    played = []
    started = time.perf_counter()
    for day in days:
        if time.perf_counter() - started > args.minutes * 60.0:
            break
        for name, policy in policies.items():
            results[name] += evaluate_policy(policy, [day], env_config)
        played.append(day)
        reopt, matching = results["reopt"][-1], results["matching"][-1]
        print(
            f"{day.name}: {len(day.bookings)} bookings, reopt {reopt.reward:.1f}, matching "
            f"{matching.reward:.1f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    elapsed_s = time.perf_counter() - started

    report = {
        "days_planned": len(days),
        "days_played": len(played),
        "seconds": elapsed_s,
        "day_names": [day.name for day in played],
        "all": summary(played, results),
        "by_fleet_size": {},
        "reopt": {"replans": policies["reopt"].replans, "fallbacks": policies["reopt"].fallbacks},
        "per_day": {
            name: [
                {"day": day.name, **results[name][k].as_dict(), "routes": results[name][k].routes}
                for k, day in enumerate(played)
            ]
            for name in POLICIES
        },
        "decision_ms": {
            name: [t for day in results[name] for t in day.decision_ms] for name in POLICIES
        },
    }
    for size in HELD_OUT_FLEET_SIZES:
        keep = [k for k, day in enumerate(played) if len(day.drivers) == size]
        if len(keep) >= 2:
            subset = {name: [results[name][k] for k in keep] for name in POLICIES}
            report["by_fleet_size"][str(size)] = summary([played[k] for k in keep], subset)

    print(f"\n{len(played)} of {len(days)} held-out days in {elapsed_s / 60:.1f} min (one core)")
    for label, part in [("all", report["all"]), *report["by_fleet_size"].items()]:
        pair = part["reopt_vs_matching"]
        timing = part["decision_time_ms"]["reopt"]
        print(
            f"{label:>4} ({part['days']} days): reopt - matching {ci_text(pair)}, p = "
            f"{pair['p_value']:.2g}; reopt decision {timing['mean']:.1f} ms mean, "
            f"{timing['p99']:.1f} ms p99"
        )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
