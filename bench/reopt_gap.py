"""Where ``reopt`` loses reward against the pairwise lookahead and the hindsight plan, on
geneva-style TRAINING days (never held-out ones).

    .venv/bin/python bench/reopt_gap.py play --pairwise-model runs/pairwise/best_model.safetensors \
        --fleets 6,12,18 --days-per-fleet 2 --log runs/reopt_gap.jsonl
    .venv/bin/python bench/reopt_gap.py hindsight --fleets 6,12,18 --days-per-fleet 2 \
        --log runs/reopt_gap.jsonl --time-limit 20
    .venv/bin/python bench/reopt_gap.py summary --log runs/reopt_gap.jsonl
    .venv/bin/python bench/reopt_gap.py prize --prizes 5,10,20 --days 6 --log runs/prize_check.jsonl

Days: for each fleet size n of ``--fleets``, ``--days-per-fleet`` geneva days of n drivers with
the preset's demand per driver, seeds from ``TRAINING_SEEDS`` (1000 * n onwards). ``play``
plays ``reopt`` and the lookahead (3 best pairs) and logs each day; ``hindsight`` adds the
hindsight plan of each day (started from the better played routes). ``summary`` splits each
policy's reward into its parts (bookings served, late pickups, cancellations, km, idle waits,
balance bonus), per fleet size, as differences ``other - reopt``, and says how many of the
bookings both served went to the same driver. ``prize`` plays ``reopt`` and ``guided-reopt``
with the same prize for every open booking (a network whose prize head is a constant) on
training days of ``bench/guided_reopt_es.py``'s distribution (from day 1000 on) and prints each
against ``reopt`` with the waits apart.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from report_file import append_row, read_rows

from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli.evaluate import lookahead_policy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.hindsight import solve_scenario
from rldispatch.reports.stats import mean_ci
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution, geneva_day
from rldispatch.scenarios.presets import TRAINING_SEEDS
from rldispatch.training.evaluation import run_day
from rldispatch.training.threads import single_threaded_numerics

PRIZE_SCALE = 30.0


def _days(fleets: str, per_fleet: int) -> list:
    days = []
    for n in (int(part) for part in fleets.split(",")):
        for k in range(per_fleet):
            seed = TRAINING_SEEDS[1000 * n + k]
            days.append(replace(geneva_day(seed, n), name=f"training-{n}-{seed}"))
    return days


def _parts(row: dict) -> dict[str, float]:
    """The reward's parts; the waits are what the other parts leave."""
    weights = RewardConfig()
    served = row["served"]
    late = round(row["late_pickup_rate"] * served)
    rides = np.asarray([len(route) for route in row["routes"]], dtype=np.float64)
    parts = {
        "served": weights.assignment_bonus * served,
        "late": -weights.late_pickup_penalty * late,
        "cancelled": -weights.cancellation_penalty * row["cancelled"],
        "km": -weights.km_cost * row["distance_km"],
        "balance": weights.balance_reward(rides) if rides.size else 0.0,
    }
    parts["waits"] = row["reward"] - sum(parts.values())
    return parts


def run_play(args: argparse.Namespace) -> None:
    single_threaded_numerics(1)
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    pairwise = load_learned_model(args.pairwise_model)
    policies = {"reopt": make_baseline("reopt"), "lookahead 3": lookahead_policy(pairwise, 3)}
    done = {(row["day"], row["policy"]) for row in read_rows(log)}
    for day in _days(args.fleets, args.days_per_fleet):
        for name, policy in policies.items():
            if (day.name, name) in done:
                continue
            if name == "reopt":
                config = EnvConfig(max_drivers=len(day.drivers))
            else:
                config = pairwise.env_config_for([day])
            env = DispatchEnv(preset=None, scenario=day, config=config)
            played = run_day(policy, env, day)
            row = {"day": day.name, "drivers": len(day.drivers), "policy": name}
            row.update(played.as_dict())
            row["routes"] = [list(route) for route in played.routes]
            append_row(log, row)
            print(f"{day.name} {name}: {played.reward:.1f}", flush=True)


def run_hindsight(args: argparse.Namespace) -> None:
    single_threaded_numerics(1)
    log = Path(args.log)
    rows = read_rows(log)
    done = {row["day"] for row in rows if row["policy"] == "hindsight"}
    for day in _days(args.fleets, args.days_per_fleet):
        played = [row for row in rows if row["day"] == day.name and row["policy"] != "hindsight"]
        if day.name in done or not played:
            continue
        start = max(played, key=lambda row: row["reward"])
        result = solve_scenario(day, time_limit_s=args.time_limit, initial_routes=start["routes"])
        if result.metrics is None:
            raise SystemExit(f"{day.name}: no hindsight plan ({result.status})")
        row = {"day": day.name, "drivers": len(day.drivers), "policy": "hindsight"}
        row.update(result.metrics.as_dict())
        index = {booking.id: k for k, booking in enumerate(day.bookings)}
        routes = dict(zip(result.vehicles, result.routes, strict=True))
        row["routes"] = [
            [index[stop.booking] for stop in routes.get(driver.id, ()) if stop.kind == "pickup"]
            for driver in day.drivers
        ]
        row["started_from"] = start["policy"]
        append_row(log, row)
        print(f"{day.name} hindsight: {result.metrics.reward:.1f}", flush=True)


def run_prize(args: argparse.Namespace) -> None:
    single_threaded_numerics(1)
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    distribution = FleetDayDistribution(fleet_sizes=(5, 6, 8, 9, 10), demand_factors=(0.8, 1.6))
    policies = {"reopt": make_baseline("reopt")}
    for prize in (float(part) for part in args.prizes.split(",") if part):
        if not 0 < prize < PRIZE_SCALE:
            raise SystemExit(f"--prizes: each must be in (0, {PRIZE_SCALE:g}), got {prize}")
        network = TermNetwork(hidden=4, terms=("prize",), term_scale=PRIZE_SCALE)
        with torch.no_grad():
            network.prize[-1].bias.fill_(float(np.arctanh(prize / PRIZE_SCALE)))
        network.requires_grad_(False)
        policies[f"prize {prize:g}"] = GuidedReoptPolicy(network, name=f"prize {prize:g}")
    if args.take:
        network = TermNetwork(hidden=4, terms=("take",))
        with torch.no_grad():
            network.take[-1].bias.fill_(1.0)
        network.requires_grad_(False)
        policies["take always"] = GuidedReoptPolicy(network, name="take always")
    done = {(row["day"], row["policy"]) for row in read_rows(log)}
    for day in distribution.days(1000, args.days):
        for name, policy in policies.items():
            if (day.name, name) in done:
                continue
            env = DispatchEnv(
                preset=None, scenario=day, config=EnvConfig(max_drivers=len(day.drivers))
            )
            played = run_day(policy, env, day)
            row = {"day": day.name, "drivers": len(day.drivers), "policy": name}
            row.update(played.as_dict())
            row["routes"] = [list(route) for route in played.routes]
            append_row(log, row)
            print(f"{day.name} {name}: {played.reward:.1f}", flush=True)
    rows = read_rows(log)
    by_day: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_day[row["day"]][row["policy"]] = row
    for name in policies:
        if name == "reopt":
            continue
        pairs = [p for p in by_day.values() if "reopt" in p and name in p]
        total = [p[name]["reward"] - p["reopt"]["reward"] for p in pairs]
        waits = [_parts(p[name])["waits"] - _parts(p["reopt"])["waits"] for p in pairs]
        summary = mean_ci(total)
        low, high = summary["ci95"]
        print(
            f"{name} - reopt: {summary['mean']:+.1f} (95% CI {low:+.1f} to {high:+.1f}) on "
            f"{len(pairs)} days, of which waits {np.mean(waits):+.1f}"
        )


def _same_driver(a: dict, b: dict) -> tuple[int, int]:
    """Bookings both served, and how many of them by the same driver."""
    driver_a = {booking: d for d, route in enumerate(a["routes"]) for booking in route}
    driver_b = {booking: d for d, route in enumerate(b["routes"]) for booking in route}
    both = set(driver_a) & set(driver_b)
    return len(both), sum(1 for booking in both if driver_a[booking] == driver_b[booking])


def run_summary(args: argparse.Namespace) -> None:
    by_day: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in read_rows(Path(args.log)):
        by_day[row["day"]][row["policy"]] = row
    for other in ("lookahead 3", "hindsight"):
        by_fleet: dict[int, list[dict[str, float]]] = defaultdict(list)
        agreement: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for policies in by_day.values():
            if "reopt" not in policies or other not in policies:
                continue
            ours, theirs = _parts(policies["reopt"]), _parts(policies[other])
            diff = {key: theirs[key] - ours[key] for key in ours}
            diff["total"] = policies[other]["reward"] - policies["reopt"]["reward"]
            by_fleet[policies["reopt"]["drivers"]].append(diff)
            agreement[policies["reopt"]["drivers"]].append(
                _same_driver(policies["reopt"], policies[other])
            )
        print(f"\n{other} - reopt, per day, by fleet size (reward units):")
        for n in sorted(by_fleet):
            rows = by_fleet[n]
            means = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
            both = sum(a for a, _ in agreement[n])
            same = sum(s for _, s in agreement[n])
            print(
                f"  {n:>2} drivers, {len(rows)} days: total {means['total']:+.1f} = served "
                f"{means['served']:+.1f}, late {means['late']:+.1f}, cancelled "
                f"{means['cancelled']:+.1f}, km {means['km']:+.1f}, waits {means['waits']:+.1f}, "
                f"balance {means['balance']:+.1f}; same driver for {same / max(both, 1):.0%} "
                f"of the {both} bookings both served"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb, handler in (("play", run_play), ("hindsight", run_hindsight)):
        sub = verbs.add_parser(verb)
        sub.add_argument("--fleets", default="6,12,18")
        sub.add_argument("--days-per-fleet", type=int, default=2)
        sub.add_argument("--log", default="runs/reopt_gap.jsonl")
        sub.set_defaults(handler=handler)
        if verb == "play":
            sub.add_argument("--pairwise-model", required=True)
        else:
            sub.add_argument("--time-limit", type=float, default=20.0)
    prize = verbs.add_parser("prize")
    prize.add_argument("--prizes", default="5,10,20")
    prize.add_argument(
        "--take",
        action="store_true",
        help="also play the take term always taking (instead of waiting) what the plan leaves out",
    )
    prize.add_argument("--days", type=int, default=6)
    prize.add_argument("--log", default="runs/prize_check.jsonl")
    prize.set_defaults(handler=run_prize)
    summary = verbs.add_parser("summary")
    summary.add_argument("--log", default="runs/reopt_gap.jsonl")
    summary.set_defaults(handler=run_summary)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
