"""Regret to the hindsight plan on held-out geneva days, from the per-day log of
``bench/guided_reopt_eval.py eval``.

    .venv/bin/python bench/heldout_regret.py solve --log runs/heldout.jsonl --days 10 \
        --time-limit 20 --out runs/hindsight_heldout.jsonl
    .venv/bin/python bench/heldout_regret.py summary --log runs/heldout.jsonl \
        --hindsight runs/hindsight_heldout.jsonl

``solve`` plans each of the first ``--days`` geneva held-out days (``held_out_days``) with
every booking known (:func:`rldispatch.policies.hindsight.solve_scenario`, ``--time-limit``
seconds, seed 0), its search started from the routes of the policy that scored best on the day
among the log's rows that carry routes; the plan is never below that policy's day. One line per
day is appended to ``--out`` (a rerun skips the days already there). ``summary`` prints each
policy's regret (hindsight reward minus its own, per day) with a 95% CI on the days both
have, and on how many days a policy scored above the plan (a plan started from another
policy's routes can be beaten).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from report_file import append_row, read_rows

from rldispatch.policies.hindsight import solve_scenario
from rldispatch.reports.stats import mean_ci
from rldispatch.scenarios.fleet_days import held_out_days
from rldispatch.training.threads import single_threaded_numerics


def run_solve(args: argparse.Namespace) -> None:
    """The hindsight plan of each day, started from the best logged routes of that day."""
    if args.time_limit <= 0:
        raise SystemExit(f"--time-limit: must be positive, got {args.time_limit}")
    single_threaded_numerics(1)
    played = [row for log in args.log for row in read_rows(Path(log)) if row.get("set") == "geneva"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {row["day"] for row in read_rows(out)}
    for day in held_out_days(args.days, start=args.first_day):
        if day.name in done:
            continue
        with_routes = [row for row in played if row["day"] == day.name and row.get("routes")]
        start = max(with_routes, key=lambda row: row["reward"], default=None)
        started = time.perf_counter()
        result = solve_scenario(
            day,
            time_limit_s=args.time_limit,
            seed=0,
            initial_routes=None if start is None else start["routes"],
        )
        if result.metrics is None:
            raise SystemExit(f"{day.name}: the hindsight solver found no plan ({result.status})")
        row = {
            "day": day.name,
            "reward": result.metrics.reward,
            "completion_rate": result.metrics.completion_rate,
            "late_pickup_rate": result.metrics.late_pickup_rate,
            "started_from": None if start is None else start["policy"],
            "started_from_reward": None if start is None else start["reward"],
            "status": result.status,
            "feasible": result.feasible,
            "time_limit_s": args.time_limit,
            "wall_s": time.perf_counter() - started,
        }
        append_row(out, row)
        print(
            f"{day.name}: hindsight {row['reward']:.1f} (from {row['started_from']}, "
            f"{row['wall_s']:.0f} s)",
            flush=True,
        )


def run_summary(args: argparse.Namespace) -> None:
    """Each policy's regret to the hindsight plan on the days both have."""
    plans = {row["day"]: row for path in args.hindsight for row in read_rows(Path(path))}
    by_policy: dict[str, dict[str, dict]] = {}
    for row in (row for log in args.log for row in read_rows(Path(log))):
        if row.get("set") == "geneva" and row["day"] in plans:
            by_policy.setdefault(row["policy"], {})[row["day"]] = row
    print(f"{len(plans)} hindsight plans")
    for name, days in sorted(by_policy.items()):
        common = sorted(days)
        regret = [plans[d]["reward"] - days[d]["reward"] for d in common]
        summary = mean_ci(regret)
        low, high = summary["ci95"]
        beaten = int(np.sum(np.asarray(regret) < 0))
        print(
            f"  {name:>28}: regret {summary['mean']:.1f} (95% CI {low:.1f} to {high:.1f}) on "
            f"{len(common)} days; hindsight {np.mean([plans[d]['reward'] for d in common]):.1f}, "
            f"policy {np.mean([days[d]['reward'] for d in common]):.1f}; plan beaten on "
            f"{beaten} days"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    solving = verbs.add_parser("solve")
    solving.add_argument(
        "--log", required=True, action="append", help="an eval log (jsonl); may be repeated"
    )
    solving.add_argument("--days", type=int, default=10, help="the first N geneva held-out days")
    solving.add_argument(
        "--first-day",
        type=int,
        default=0,
        help="solve from this held-out day on (runs on parts of the set, each with its --out, "
        "are read together by summary: pass each with --hindsight)",
    )
    solving.add_argument("--time-limit", type=float, default=20.0, help="seconds per day")
    solving.add_argument("--out", required=True, help="hindsight plans (jsonl, appended)")
    solving.set_defaults(handler=run_solve)
    summary = verbs.add_parser("summary")
    summary.add_argument(
        "--log", required=True, action="append", help="an eval log (jsonl); may be repeated"
    )
    summary.add_argument("--hindsight", required=True, action="append")
    summary.set_defaults(handler=run_summary)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
