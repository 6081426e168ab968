"""Arguments and helpers that several verbs share."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.cli import CliError
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.progress import on_terminal
from rldispatch.reports.report import day_summary
from rldispatch.rewards import RewardConfig
from rldispatch.rewards_file import (
    RewardFileError,
    differing_weights,
    load_reward_file,
    reward_to_dict,
)
from rldispatch.scenarios.days import split_days_by_date
from rldispatch.scenarios.files import load_scenario, scenario_paths
from rldispatch.scenarios.presets import PRESETS, make_preset
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.noise import Uncertainty

DAY_FIELDS = tuple(field.name for field in fields(DayMetrics))
DAYS_HELP = (
    "A scenario file is one day, played once; a folder is played whole unless --episodes caps "
    "it. Every report says how many distinct days it rests on, and gives no confidence "
    "interval or p-value below 5 of them."
)
STOCHASTIC_POLICIES = frozenset({"random"})
"""Policies whose decisions depend on a random draw: the only ones ``--repeats`` replays."""


@dataclass(frozen=True)
class Days:
    """The days a command runs on, with a label per day for the report.

    ``held_out`` lists the dates held out of a folder (the days played), ``available`` the
    number of days the source had when ``--episodes`` capped it (None when not capped).
    """

    name: str
    scenarios: list[Scenario]
    labels: list[int | str]
    held_out: list[str] | None = None
    available: int | None = None
    folder_days: int | None = None

    def report_fields(self) -> dict[str, Any]:
        """What the report says about where its days came from (added to its JSON)."""
        added: dict[str, Any] = {}
        if self.held_out is not None:
            added["held_out_days"] = list(self.held_out)
            added["folder_days"] = self.folder_days
        if self.available is not None:
            added["days_available"] = self.available
            added["episodes_cap"] = len(self.scenarios)
        networks = sorted({day.travel.road_network or "" for day in self.scenarios})
        if networks != [""]:
            added["road_network"] = networks[0] if len(networks) == 1 else networks
        return added


def add_day_arguments(parser: argparse.ArgumentParser, default_episodes: int = 20) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset", choices=sorted(PRESETS), help="synthetic days of a preset (default: geneva)"
    )
    source.add_argument(
        "--scenario", type=Path, help="one day: a scenario JSON or Cordeau .txt, played once"
    )
    source.add_argument(
        "--scenarios", type=Path, help="a folder of scenario JSON files, one day each"
    )
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        help=f"preset days to play (default {default_episodes}); with --scenarios, a cap on "
        "the folder's days (default: all of them)",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        help="play each day this many times with a stochastic policy (random) and report its "
        "mean per day; deterministic policies play each day once (default 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first day")
    parser.set_defaults(default_episodes=default_episodes)


def add_all_days_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-days",
        action="store_true",
        help="with --scenarios: play every day of the folder, dated or not, instead of only "
        "its held-out latest dates",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def finite_float(text: str) -> float:
    """A finite number (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def port_number(text: str) -> int:
    """A TCP port to listen on: an integer from 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def preset_days(preset: str, first_seed: int, episodes: int) -> Days:
    seeds = list(range(first_seed, first_seed + episodes))
    return Days(preset, [make_preset(preset, seed) for seed in seeds], seeds)


def named_days(
    args: argparse.Namespace, first_preset_seed: int = 0, folder_part: str = "all"
) -> Days:
    """The days named by ``--preset``, ``--scenario`` or ``--scenarios``.

    Preset days have seeds ``first_preset_seed + --seed + k``, ``--episodes`` of them; a
    scenario file is one day, played once; a folder gives every day by file name, from all of
    them (``folder_part="all"``) or, split by date, from the earlier training days
    (``"training"``) or the later held-out days (``"held_out"``), the first ``--episodes``
    only when it is given.
    """
    episodes = getattr(args, "episodes", None)
    if args.scenario is not None:
        if episodes is not None and episodes > 1:
            raise CliError(
                f"--episodes {episodes}: a scenario file is one day and is played once; give a "
                "folder (--scenarios) for more days, or --repeats N to replay a stochastic policy"
            )
        scenario = load_scenario(args.scenario)
        return Days(scenario.name, [scenario], [args.scenario.stem])
    if args.scenarios is not None:
        if folder_part == "all":
            paths = scenario_paths(args.scenarios)
            folder_days = len(paths)
        else:
            training, held_out = split_days_by_date(args.scenarios)
            paths = training if folder_part == "training" else held_out
            folder_days = len(training) + len(held_out)
        capped = episodes is not None and episodes < len(paths)
        chosen = paths[:episodes] if capped else paths
        return Days(
            str(args.scenarios),
            [load_scenario(path) for path in chosen],
            [path.stem for path in chosen],
            held_out=[path.stem for path in chosen] if folder_part == "held_out" else None,
            available=len(paths) if capped else None,
            folder_days=folder_days,
        )
    count = episodes if episodes is not None else getattr(args, "default_episodes", 20)
    return preset_days(args.preset or "geneva", first_preset_seed + args.seed, count)


def days_from_args(
    args: argparse.Namespace, first_preset_seed: int = 0, folder_part: str = "all"
) -> Days:
    """The days named by ``--preset``, ``--scenario`` or ``--scenarios`` (see
    :func:`named_days`), on the road network of ``--road-network`` when it is given."""
    days = named_days(args, first_preset_seed, folder_part)
    road_network = road_network_from_args(args)
    scenarios = on_road_network(days.scenarios, road_network)
    return replace(days, scenarios=scenarios)


def add_road_network_argument(parser: argparse.ArgumentParser) -> None:
    """``--road-network FILE.osm.pbf``: travel on a road network instead of the formula."""
    parser.add_argument(
        "--road-network",
        type=Path,
        metavar="FILE.osm.pbf",
        help="an OpenStreetMap extract: every day travels on its roads (fastest routes at the "
        "roads' speeds, the travel model's hourly factor applying) instead of the formula "
        "(default: each day's own travel block)",
    )


def road_network_from_args(args: argparse.Namespace) -> str | None:
    """The file of ``--road-network`` (None when not given), read once here: a missing or
    broken file is one line, exit 2."""
    from rldispatch.sim.road_network import load_road_network

    path = getattr(args, "road_network", None)
    if path is None:
        return None
    try:
        load_road_network(path)
    except ValueError as error:
        raise CliError(f"--road-network {error}") from None
    return str(path)


FAR_FROM_ROADS_KM = 1.0
"""A place farther than this from every junction of a day's road network is reported: the
day probably lies outside the extract."""


def on_road_network(scenarios: Sequence[Scenario], road_network: str | None) -> list[Scenario]:
    """The days on ``road_network`` (None: as they are); every road network a day names is
    read here, so that a broken one is one line before anything is played, and a day whose
    places lie far from its roads is pointed out (on stderr)."""
    from rldispatch.sim.road_network import load_road_network

    placed = []
    for scenario in scenarios:
        if road_network is not None:
            if scenario.coords != "latlon":
                raise CliError(
                    f"--road-network: day {scenario.name} has coords '{scenario.coords}'; a road "
                    "network needs latitude and longitude"
                )
            travel = replace(scenario.travel, road_network=road_network)
            scenario = replace(scenario, travel=travel)
        named = scenario.travel.road_network
        if named is not None:
            try:
                network = load_road_network(named)
            except ValueError as error:
                raise CliError(f"{scenario.name}: travel.road_network: {error}") from None
            points = [d.start for d in scenario.drivers] + [b.pickup for b in scenario.bookings]
            points += [b.dropoff for b in scenario.bookings]
            far = int((network.snap_km(np.asarray(points)) > FAR_FROM_ROADS_KM).sum())
            if far:
                print(
                    f"warning: day {scenario.name}: {far} of {len(points)} places lie more than "
                    f"{FAR_FROM_ROADS_KM:g} km from every junction of {named} (is the day "
                    "outside the extract?); they travel from the nearest junction",
                    file=sys.stderr,
                )
        placed.append(scenario)
    return placed


def repeat_stochastic(
    results: dict[str, list[DayMetrics]],
    policies: Mapping[str, Policy],
    days: Days,
    env_config: EnvConfig | None,
    repeats: int,
    jobs: int = 1,
) -> dict[str, Any]:
    """Replay each stochastic policy ``repeats - 1`` more times on the same days (over
    ``jobs`` processes) and keep its mean per day, so every policy still has one figure per
    distinct day. Returns the report's ``repeats`` field."""
    from rldispatch.training.evaluation import evaluate_policy

    stochastic = [name for name, policy in policies.items() if policy.name in STOCHASTIC_POLICIES]
    if repeats > 1:
        for name in stochastic:
            runs = [results[name]] + [
                evaluate_policy(
                    policies[name], days.scenarios, env_config, progress=True, jobs=jobs
                )
                for _ in range(repeats - 1)
            ]
            results[name] = [mean_day(day_runs) for day_runs in zip(*runs, strict=True)]
    return {"count": repeats, "policies": stochastic if repeats > 1 else []}


def mean_day(runs: Sequence[DayMetrics]) -> DayMetrics:
    """The mean figures of several runs of one day, with the decision times of all of them
    when the runs carry them (a mean has no routes of its own)."""
    figures = {name: float(np.mean([getattr(run, name) for run in runs])) for name in DAY_FIELDS}
    decision_ms = tuple(t for run in runs for t in getattr(run, "decision_ms", ()))
    if not decision_ms:
        return DayMetrics(**figures)
    from rldispatch.training.evaluation import PlayedDay

    return PlayedDay(**figures, decision_ms=decision_ms)


def env_config_for(
    days: list[Scenario],
    base: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    uncertainty: Uncertainty | None = None,
) -> EnvConfig:
    """An env config with enough driver slots for every day (scored with ``reward``, when
    given, on days as uncertain as ``uncertainty``)."""
    from dataclasses import replace

    base = base or EnvConfig()
    if reward is not None:
        base = replace(base, reward=reward)
    if uncertainty is not None:
        base = replace(base, uncertainty=uncertainty)
    most = max(len(day.drivers) for day in days)
    if most <= base.max_drivers:
        return base
    from dataclasses import replace

    return replace(base, max_drivers=most)


ELAPSED_TICKER = """
import sys, time
total, label = float(sys.argv[1]), sys.argv[2]
start = time.monotonic()
while True:
    done = time.monotonic() - start
    filled = int(24 * min(done / total, 1.0))
    bar = "#" * filled + "." * (24 - filled)
    sys.stderr.write(f"\\r{label}: [{bar}] {done:.0f} of ~{total:.0f} s ")
    sys.stderr.flush()
    time.sleep(0.5)
"""


@contextmanager
def elapsed_bar(seconds: float, description: str, enabled: bool = True) -> Iterator[None]:
    """A bar of elapsed against expected seconds on stderr, for a call that reports no
    progress of its own and holds the interpreter while it runs (OR-Tools' search): the bar is
    drawn by a small child process, stopped when the call returns; only on a terminal."""
    if not (enabled and on_terminal()):
        yield
        return
    ticker = subprocess.Popen(
        [sys.executable, "-c", ELAPSED_TICKER, str(max(1.0, seconds)), description],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        ticker.terminate()
        ticker.wait()
        sys.stderr.write("\r" + " " * (len(description) + 48) + "\r")
        sys.stderr.flush()


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="spread the days (and hindsight solves) over this many processes; the report "
        "is the same as with one (default 1)",
    )


def add_reward_argument(parser: argparse.ArgumentParser) -> None:
    """``--reward FILE``: the company's reward weights (a ``RewardConfig`` as JSON)."""
    parser.add_argument(
        "--reward",
        type=Path,
        metavar="FILE",
        help="the reward weights as a JSON object of RewardConfig fields (assignment_bonus, "
        "late_pickup_penalty, cancellation_penalty, km_cost, idle_wait_penalty, "
        "balance_bonus); fields left out keep their defaults. Default: a model's own "
        "weights, else the defaults",
    )


def reward_from_args(args: argparse.Namespace) -> RewardConfig | None:
    """The weights of ``--reward`` (None when not given); a bad file is one line, exit 2."""
    path = getattr(args, "reward", None)
    if path is None:
        return None
    try:
        return load_reward_file(path)
    except RewardFileError as error:
        raise CliError(f"--reward {error}") from error


@dataclass(frozen=True)
class RewardChoice:
    """The weights a run scores under, where they came from, and how a model's differ."""

    weights: RewardConfig
    source: str
    """``--reward FILE``, ``model`` (a model's own) or ``default``."""
    overridden: dict[str, list[str]]
    """Per model whose recorded weights differ from ``weights``: the differing weights."""

    def report_fields(self) -> dict[str, Any]:
        """What the report says about its weights (added to its JSON)."""
        added: dict[str, Any] = {
            "reward_weights": reward_to_dict(self.weights),
            "reward_source": self.source,
        }
        if self.overridden:
            added["reward_override"] = self.overridden
        return added


def choose_reward(
    args: argparse.Namespace,
    models: Mapping[str, RewardConfig] | None = None,
    out: Any = None,
) -> RewardChoice:
    """The weights a run scores under: ``--reward`` when given, else the first model's own,
    else the defaults. Prints one line (to ``out``, default stdout) for each model trained
    under other weights."""
    given = reward_from_args(args)
    models = dict(models or {})
    if given is not None:
        weights, source = given, f"--reward {args.reward}"
    elif models:
        weights, source = next(iter(models.values())), "model"
    else:
        weights, source = RewardConfig(), "default"
    overridden = {}
    for label, own in models.items():
        differing = differing_weights(own, weights)
        if differing:
            overridden[label] = differing
            print(
                f"{label}: trained under other reward weights than this run's ({source}): "
                + ", ".join(differing),
                file=out or sys.stdout,
            )
    return RewardChoice(weights, source, overridden)


def say_road_network_differences(
    models: Mapping[str, str | None], scenarios: Sequence[Scenario], out: Any = None
) -> dict[str, str]:
    """Per model (label: the road network file it trained on, None: the formula) whose
    training travel differs from the days' (each day's ``travel.road_network``): one line
    saying how, printed (to ``out``, default stdout) and returned for the report."""
    from rldispatch.agents.serving import road_network_difference

    played = [scenario.travel.road_network for scenario in scenarios]
    differing = {}
    for label, trained in models.items():
        line = road_network_difference(trained, played)
        if line:
            differing[label] = line
            print(f"{label}: {line}", file=out or sys.stdout)
    return differing


def _fraction(name: str, high: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not (np.isfinite(value) and 0.0 <= value <= high):
            raise argparse.ArgumentTypeError(f"must be a number in [0, {high:g}], got {text}")
        return value

    parse.__name__ = name
    return parse


def add_uncertainty_arguments(parser: argparse.ArgumentParser) -> None:
    """``--travel-noise``, ``--no-show-rate``, ``--service-delay``: an uncertain day."""
    from rldispatch.sim.noise import MAX_SERVICE_DELAY_CV, MAX_TRAVEL_CV

    group = parser.add_argument_group(
        "an uncertain day (drawn per day and booking from --seed: the same for every policy)"
    )
    group.add_argument(
        "--travel-noise",
        type=_fraction("travel noise", MAX_TRAVEL_CV),
        default=0.0,
        metavar="CV",
        help="each drive to a pickup and each ride takes its planned time times a draw of "
        "mean 1 and this coefficient of variation (default 0: as planned)",
    )
    group.add_argument(
        "--no-show-rate",
        type=_fraction("no-show rate", 1.0),
        default=0.0,
        metavar="P",
        help="share of patients not at the pickup: the driver waits the service time and "
        "leaves; the booking is a no-show, neither served nor cancelled (default 0)",
    )
    group.add_argument(
        "--service-delay",
        type=_fraction("service delay", MAX_SERVICE_DELAY_CV),
        default=0.0,
        metavar="CV",
        help="service at a stop takes its planned time times 1 + CV * |Z|, never less (default 0)",
    )


def uncertainty_from_args(args: argparse.Namespace) -> Uncertainty | None:
    """The uncertain day the options ask for (None: the certain day)."""
    uncertainty = Uncertainty(
        travel_cv=getattr(args, "travel_noise", 0.0),
        no_show_rate=getattr(args, "no_show_rate", 0.0),
        service_delay_cv=getattr(args, "service_delay", 0.0),
        seed=getattr(args, "seed", 0),
    )
    return uncertainty if uncertainty.active else None


def uncertainty_report(uncertainty: Uncertainty | None) -> dict[str, Any]:
    """What a report says about the day's noise (zeros: the certain day)."""
    return {"uncertainty": (uncertainty or Uncertainty()).to_dict()}


def add_hindsight_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hindsight",
        action="store_true",
        help="add the hindsight plan of each day (OR-Tools, every booking known in advance) "
        "and each policy's regret against it",
    )
    parser.add_argument(
        "--hindsight-time-limit",
        type=positive_seconds,
        default=20.0,
        help="seconds of search per day for the hindsight plan (default 20)",
    )


def add_hindsight(
    results: dict[str, list[DayMetrics]],
    days: list[Scenario],
    time_limit_s: float,
    extra: dict[str, Any],
    jobs: int = 1,
    reward: RewardConfig | None = None,
    uncertainty: Uncertainty | None = None,
) -> None:
    """Add a ``hindsight`` row to ``results``, and to ``extra`` each policy's regret and how
    often an online policy beat the hindsight plan (``hindsight_beaten``). Each day's search
    starts from the plan of the policy that scored best that day. On an uncertain day the
    plan is solved on the realised day (the patients who were there, the legs and service
    as they took)."""
    from rldispatch.reports.report import hindsight_beaten
    from rldispatch.training.evaluation import hindsight_results

    online = dict(results)
    starts = []
    for k in range(len(days)):
        # A day averaged over --repeats runs has no routes: the best played plan is the start.
        planned = [name for name in online if getattr(online[name][k], "routes", ())]
        best_name = max(planned, key=lambda name: online[name][k].reward, default=None)
        starts.append(online[best_name][k].routes if best_name is not None else None)
    solved = hindsight_results(
        days,
        time_limit_s,
        progress=True,
        initial_routes=starts,
        jobs=jobs,
        reward=reward,
        uncertainty=uncertainty,
    )
    results["hindsight"] = [result.metrics for result in solved]
    best = [day.reward for day in results["hindsight"]]
    extra["regret"] = {
        name: day_summary([b - day.reward for b, day in zip(best, metrics, strict=True)])
        for name, metrics in online.items()
    }
    extra["hindsight_beaten"] = hindsight_beaten(online, results["hindsight"])
    extra["hindsight_kept_online_plan"] = sum(
        result.status.endswith("from the given plan") for result in solved
    )
