"""Arguments and helpers that several verbs share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.reports.stats import mean_ci
from rldispatch.scenarios.days import split_days_by_date
from rldispatch.scenarios.files import load_scenario, load_scenario_dir
from rldispatch.scenarios.presets import PRESETS, make_preset
from rldispatch.sim.metrics import DayMetrics


@dataclass(frozen=True)
class Days:
    """The days a command runs on, with a label per day for the report."""

    name: str
    scenarios: list[Scenario]
    labels: list[int | str]


def add_day_arguments(parser: argparse.ArgumentParser, default_episodes: int = 20) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset", choices=sorted(PRESETS), help="synthetic days of a preset (default: geneva)"
    )
    source.add_argument("--scenario", type=Path, help="one day: a scenario JSON or Cordeau .txt")
    source.add_argument("--scenarios", type=Path, help="a folder of scenario JSON files")
    parser.add_argument(
        "--episodes", type=positive_int, default=default_episodes, help="number of days"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first day")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def preset_days(preset: str, first_seed: int, episodes: int) -> Days:
    seeds = list(range(first_seed, first_seed + episodes))
    return Days(preset, [make_preset(preset, seed) for seed in seeds], seeds)


def days_from_args(
    args: argparse.Namespace, first_preset_seed: int = 0, folder_part: str = "all"
) -> Days:
    """The days named by ``--preset``, ``--scenario`` or ``--scenarios``.

    Preset days have seeds ``first_preset_seed + --seed + k``; a single scenario file is
    played ``--episodes`` times; a folder gives its first ``--episodes`` days by file name,
    from all of them (``folder_part="all"``) or, split by date, from the earlier training
    days (``"training"``) or the later held-out days (``"held_out"``).
    """
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        return Days(scenario.name, [scenario] * args.episodes, list(range(args.episodes)))
    if args.scenarios is not None:
        if folder_part == "all":
            loaded = load_scenario_dir(args.scenarios)[: args.episodes]
        else:
            training, held_out = split_days_by_date(args.scenarios)
            paths = training if folder_part == "training" else held_out
            loaded = [(path, load_scenario(path)) for path in paths[: args.episodes]]
        return Days(
            str(args.scenarios),
            [scenario for _, scenario in loaded],
            [path.stem for path, _ in loaded],
        )
    return preset_days(args.preset or "geneva", first_preset_seed + args.seed, args.episodes)


def env_config_for(days: list[Scenario], base: EnvConfig | None = None) -> EnvConfig:
    """An env config with enough driver slots for every day."""
    base = base or EnvConfig()
    most = max(len(day.drivers) for day in days)
    if most <= base.max_drivers:
        return base
    from dataclasses import replace

    return replace(base, max_drivers=most)


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="spread the days (and hindsight solves) over this many processes; the report "
        "is the same as with one (default 1)",
    )


def add_hindsight_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hindsight",
        action="store_true",
        help="add the hindsight plan of each day (OR-Tools, every booking known in advance) "
        "and each policy's regret against it",
    )
    parser.add_argument(
        "--hindsight-time-limit",
        type=float,
        default=20.0,
        help="seconds of search per day for the hindsight plan (default 20)",
    )


def add_hindsight(
    results: dict[str, list[DayMetrics]],
    days: list[Scenario],
    time_limit_s: float,
    extra: dict[str, Any],
    jobs: int = 1,
) -> None:
    """Add a ``hindsight`` row to ``results``, and to ``extra`` each policy's regret and how
    often an online policy beat the hindsight plan (``hindsight_beaten``). Each day's search
    starts from the plan of the policy that scored best that day."""
    from rldispatch.reports.report import hindsight_beaten
    from rldispatch.training.evaluation import hindsight_results

    online = dict(results)
    starts = []
    for k in range(len(days)):
        best_name = max(online, key=lambda name: online[name][k].reward)
        starts.append(getattr(online[best_name][k], "routes", None))
    solved = hindsight_results(days, time_limit_s, progress=True, initial_routes=starts, jobs=jobs)
    results["hindsight"] = [result.metrics for result in solved]
    best = [day.reward for day in results["hindsight"]]
    extra["regret"] = {
        name: mean_ci([b - day.reward for b, day in zip(best, metrics, strict=True)])
        for name, metrics in online.items()
    }
    extra["hindsight_beaten"] = hindsight_beaten(online, results["hindsight"])
    extra["hindsight_kept_online_plan"] = sum(
        result.status.endswith("from the given plan") for result in solved
    )
