"""Arguments and helpers that several verbs share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.scenarios.files import load_scenario, load_scenario_dir
from rldispatch.scenarios.presets import PRESETS, make_preset


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


def days_from_args(args: argparse.Namespace, first_preset_seed: int = 0) -> Days:
    """The days named by ``--preset``, ``--scenario`` or ``--scenarios``.

    Preset days have seeds ``first_preset_seed + --seed + k``; a single scenario file is
    played ``--episodes`` times; a folder gives its first ``--episodes`` days by file name.
    """
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        return Days(scenario.name, [scenario] * args.episodes, list(range(args.episodes)))
    if args.scenarios is not None:
        loaded = load_scenario_dir(args.scenarios)[: args.episodes]
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
