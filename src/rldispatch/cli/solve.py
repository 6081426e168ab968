"""``rldispatch solve``: the hindsight solution of a scenario (every booking known in advance).

A Cordeau ``.txt`` instance is solved as the static dial-a-ride problem and checked by the
independent checker; a JSON scenario is solved under the simulator's rules.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    add_reward_argument,
    add_road_network_argument,
    choose_reward,
    elapsed_bar,
    on_road_network,
    road_network_from_args,
)
from rldispatch.files import atomic_write_json
from rldispatch.text import plural


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "solve",
        help=VERBS["solve"],
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    parser.add_argument(
        "--scenario",
        required=True,
        type=Path,
        help="scenario JSON file, or a Cordeau instance (.txt)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds of search (default 60 for a Cordeau instance, 30 for a scenario)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of a Cordeau search; the order in which a scenario's bookings are seen",
    )
    add_reward_argument(parser)
    add_road_network_argument(parser)
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def show_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress


def gap_to_best_known(cost: float, best_known: float) -> float:
    """Gap in % of a cost to the published best, both to the published two decimals; a gap
    that rounds to zero is 0 (never -0.00)."""
    gap = 100.0 * (round(cost, 2) - best_known) / best_known
    return 0.0 if abs(gap) < 0.005 else gap


def in_units(text: str, coords: str) -> str:
    """The printed solution with distances in the scenario's units: km for latitude and
    longitude, plain units for ``xy`` (Euclidean) days."""
    if coords == "latlon":
        return text
    return text.replace("distance km:", "   distance:").replace(
        "\n   pickup delay", " (Euclidean units)\n   pickup delay"
    )


def run(args: argparse.Namespace) -> int:
    from rldispatch.policies.hindsight import solve_cordeau, solve_scenario
    from rldispatch.policies.hindsight_check import check_cordeau_solution
    from rldispatch.scenarios.cordeau import BEST_KNOWN_COSTS, read_cordeau
    from rldispatch.scenarios.files import load_scenario

    if args.time_limit is not None and not args.time_limit > 0:
        raise CliError(f"--time-limit must be positive, got {args.time_limit}")
    path: Path = args.scenario
    if not path.is_file():
        raise CliError(f"--scenario: no such file: {path}")
    reward = choose_reward(args)
    extra: dict[str, Any] = reward.report_fields()
    road_network = road_network_from_args(args)
    if road_network is not None and path.suffix == ".txt":
        raise CliError(
            "--road-network: a Cordeau instance has xy coordinates; a road network needs "
            "latitude and longitude"
        )
    if path.suffix == ".txt":
        instance = read_cordeau(path)
        time_limit_s = 60.0 if args.time_limit is None else args.time_limit
        with elapsed_bar(time_limit_s, "solving", show_progress(args)):
            result = solve_cordeau(
                instance, time_limit_s=time_limit_s, seed=args.seed, reward=reward.weights
            )
        print(in_units(str(result), "xy"))
        problems = check_cordeau_solution(instance, result.routes, claimed_cost=result.cost)
        print()
        if problems:
            print(f"checker: {plural(len(problems), 'problem')}, first: {problems[0]}")
        else:
            print("checker: the solution is valid")
        extra["checker_problems"] = problems
        best_known = BEST_KNOWN_COSTS.get(instance.name)
        if best_known is not None:
            gap_pct = gap_to_best_known(result.cost, best_known)
            print(f"best known cost: {best_known:.2f} (gap {gap_pct:.2f} %, Euclidean units)")
            extra["best_known_cost"] = best_known
            extra["gap_pct"] = gap_pct
        feasible = result.feasible and not problems
    else:
        (scenario,) = on_road_network([load_scenario(path)], road_network)
        if scenario.travel.road_network is not None:
            extra["road_network"] = scenario.travel.road_network
        time_limit_s = 30.0 if args.time_limit is None else args.time_limit
        with elapsed_bar(time_limit_s, "solving", show_progress(args)):
            result = solve_scenario(
                scenario, time_limit_s=time_limit_s, reward=reward.weights, seed=args.seed
            )
        print(in_units(str(result), scenario.coords))
        if scenario.travel.road_network is not None:
            print(f"travel: the roads of {scenario.travel.road_network}")
        feasible = result.feasible
    if args.json:
        data = result.to_dict()
        data["feasible"] = feasible
        data["scenario"] = str(path)
        data.update(extra)
        atomic_write_json(args.json, data)
        print(f"wrote {args.json}")
    return 0 if feasible else 1
