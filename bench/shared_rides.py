"""Shared rides on held-out geneva-mix days: occupancy, shared-ride share, ride time over the
direct time, breaks, and the validator's counts, per policy on the same days.

    python bench/shared_rides.py [--days 50] [--policies nearest insertion matching reopt]
                                 [--json OUT]

Each played day is checked by ``rldispatch.sim.validator.check_played_day``; the counts of
bookings in a vehicle without their kind of place, rides over their limit and missed breaks
are summed over the days (0 on every line when the simulator keeps its rules).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rldispatch.cli.common import env_config_for
from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import run_day

FIGURES = ("reward", "completion_rate", "occupancy", "shared_ride_share", "ride_time_ratio")


def play_policy(name: str, days: list) -> dict[str, float]:
    """Mean figures of one policy over the days, and the validator's counts summed."""
    env = DispatchEnv(env_config_for(days))
    figures: dict[str, list[float]] = {key: [] for key in FIGURES}
    counts = {"wrong_place": 0, "max_ride_violations": 0, "missed_breaks": 0, "breaks_taken": 0}
    decision_ms: list[float] = []
    for day in days:
        played = run_day(make_baseline(name), env, day)
        for key in FIGURES:
            figures[key].append(getattr(played, key))
        check = check_played_day(env.sim)
        counts["wrong_place"] += check.wrong_place + check.too_many_on_board
        counts["max_ride_violations"] += check.max_ride_violations
        counts["missed_breaks"] += check.missed_breaks
        counts["breaks_taken"] += played.breaks_taken
        decision_ms.extend(played.decision_ms)
    summary = {key: float(np.mean(values)) for key, values in figures.items()}
    summary["decision_ms_p99"] = float(np.percentile(decision_ms, 99)) if decision_ms else 0.0
    return {**summary, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument(
        "--policies", nargs="+", default=["nearest", "insertion", "matching", "reopt"]
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seeds = [HELD_OUT_SEEDS[k] for k in range(args.days)]
    days = [make_preset("geneva-mix", seed) for seed in seeds]
    report = {"preset": "geneva-mix", "seeds": seeds, "policies": {}}
    header = f"{'policy':<10} {'reward':>8} {'done':>6} {'occup':>6} {'shared':>7} {'ride/dir':>8}"
    print(header + "  wrong-place  over-limit  missed-breaks  breaks  p99 ms")
    for name in args.policies:
        started = time.perf_counter()
        row = play_policy(name, days)
        row["seconds"] = time.perf_counter() - started
        report["policies"][name] = row
        print(
            f"{name:<10} {row['reward']:8.1f} {row['completion_rate']:6.1%} "
            f"{row['occupancy']:6.2f} {row['shared_ride_share']:7.1%} "
            f"{row['ride_time_ratio']:8.2f}  {row['wrong_place']:11d}  "
            f"{row['max_ride_violations']:10d}  {row['missed_breaks']:13d}  "
            f"{row['breaks_taken']:6d}  {row['decision_ms_p99']:6.1f}"
        )
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
