"""``rldispatch train``: train any learned kind; TensorBoard, checkpoints and metrics in ``--out``.

``--agent`` picks the kind (``pairwise`` by default); ``rldispatch train --agent KIND --help``
lists the options that apply to that kind, and an option that does not apply is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rldispatch.agents.config_fields import ConfigError
from rldispatch.agents.kinds import DEFAULT_KIND, agent_kind, kind_names
from rldispatch.agents.model_container import ModelFileError
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    non_negative_int,
    positive_int,
    reward_from_args,
    road_network_from_args,
    uncertainty_from_args,
)
from rldispatch.files import atomic_write_json, describe_folder_size
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.scenarios.presets import PRESETS
from rldispatch.training.checkpoint import CheckpointError
from rldispatch.training.days import (
    DaysError,
    FleetDays,
    PresetDays,
    RoadNetworkDays,
    ScenarioDays,
    TrainingDays,
)
from rldispatch.training.train import (
    RunSettings,
    TrainingError,
    TrainResult,
    resume_training,
    train,
)

OPTIONS_DEPEND_ON_ARGV = True
DEFAULT_MINUTES = 20.0
FLEET_OPTIONS = ("--fleets", "--demand")
"""Options of the kinds that train on days of every fleet size."""


def positive_minutes(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text}")
    return value


def fleet_sizes(text: str) -> tuple[int, ...]:
    """``5-30`` or ``5,8,12``: fleet sizes to draw training days from."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            sizes = tuple(range(low, high + 1))
        else:
            sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 5-30 or 5,8,12, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"needs fleet sizes >= 1, got {text!r}")
    return sizes


def demand_factors(text: str) -> tuple[float, float]:
    """``0.8,1.6``: the low and high factor of the fleet days' bookings per driver."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 0.8,1.6, got {text!r}") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"needs 0 < low <= high, got {text!r}")
    return low, high


def chosen_kind(argv: list[str]) -> str:
    """The ``--agent`` of ``argv`` (default: the kind that ships)."""
    for index, item in enumerate(argv):
        if item == "--agent" and index + 1 < len(argv):
            return argv[index + 1]
        if item.startswith("--agent="):
            return item.split("=", 1)[1]
    return DEFAULT_KIND


def register(subparsers: argparse._SubParsersAction, argv: list[str]) -> None:
    name = chosen_kind(argv)
    kind = agent_kind(name) if name in kind_names() else None
    fleets = kind is not None and kind.default_days == "fleets"
    default_source = (
        "geneva-style days of every fleet size (--fleets)" if fleets else "the geneva preset"
    )
    parser = subparsers.add_parser(
        "train",
        help=VERBS["train"],
        description=f"Train the {name} agent ({kind.summary if kind else 'unknown kind'}). "
        f"Days: {default_source}, --preset, or --scenarios DIR (a folder of dated scenario "
        "files: the later dates are held out for evaluate, the last training dates select "
        "the best model). The run folder gets TensorBoard logs, checkpoints, best and final "
        "models and training_metrics.json; --resume continues a stopped or killed run from "
        "its last checkpoint with its own saved config. The best model is the best "
        "evaluation on the selection days, the untrained start included"
        + (f" ({kind.untrained_start})" if kind else "")
        + ": a run whose training does not beat its start there returns the start.",
    )
    parser.add_argument(
        "--agent",
        choices=kind_names(),
        default=DEFAULT_KIND,
        help=f"the learned kind (default {DEFAULT_KIND}); --help after it lists its options",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="train on days of a preset")
    source.add_argument(
        "--scenarios", type=Path, help="train on a folder of scenario files named by date"
    )
    if fleets:
        source.add_argument(
            "--fleets",
            type=fleet_sizes,
            help="fleet sizes of the training days, e.g. 5-30 (default: 5 to 30 without the "
            "held-out sizes 7, 13 and 24)",
        )
        parser.add_argument(
            "--demand",
            type=demand_factors,
            help="bookings per driver of the fleet days: LOW,HIGH times the preset's "
            "(default 0.8,1.25; 0.8,1.6 has overloaded days)",
        )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--config", type=Path, help=f"hyperparameters: a JSON object of {name} config fields"
    )
    parser.add_argument(
        "--days",
        "--episodes",
        dest="days",
        type=positive_int,
        help="budget in training days (in total, counting a resumed run's)",
    )
    parser.add_argument(
        "--max-minutes",
        type=positive_minutes,
        help=f"budget in wall time (default {DEFAULT_MINUTES:g} minutes when --days is not given)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, with its saved config and days",
    )
    parser.add_argument(
        "--eval-every", type=non_negative_int, default=20, help="days between evaluations (20)"
    )
    parser.add_argument(
        "--eval-days",
        type=positive_int,
        help="selection days the best model is chosen on (default: 16 for fleets, 10 for a "
        "preset, a fifth of the training dates for --scenarios)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=20,
        help="days between checkpoints (20)",
    )
    parser.add_argument(
        "--no-buffer-checkpoint",
        action="store_true",
        help="leave the replay buffer out of checkpoints/resume.pt (most of a run folder's "
        "size: hundreds of MB with it, a few without; a resumed run refills it)",
    )
    add_reward_argument(parser)
    add_road_network_argument(parser)
    add_uncertainty_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", type=str, help="write the training summary JSON here")
    parser.set_defaults(handler=run)


def training_days(args: argparse.Namespace, kind_default_days: str) -> TrainingDays:
    """The day source the arguments ask for (on ``--road-network`` when given)."""
    road_network = road_network_from_args(args)
    try:
        days: TrainingDays
        if args.scenarios is not None:
            days = ScenarioDays(args.scenarios, selection=args.eval_days, seed=args.seed)
        elif args.preset is not None or kind_default_days == "preset":
            days = PresetDays(args.preset or "geneva", selection=args.eval_days or 10)
        else:
            sizes = getattr(args, "fleets", None)
            demand = getattr(args, "demand", None)
            shape: dict[str, Any] = {"fleet_sizes": sizes} if sizes else {}
            if demand:
                shape["demand_factors"] = demand
            distribution = FleetDayDistribution(**shape) if shape else None
            days = FleetDays(distribution, selection=args.eval_days or 16)
        return RoadNetworkDays(days, road_network) if road_network is not None else days
    except (DaysError, ValueError) as error:
        raise CliError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    kind = agent_kind(args.agent)
    budget_s = args.max_minutes * 60.0 if args.max_minutes else None
    try:
        if args.resume:
            if args.config is not None:
                raise CliError("--config: --resume reads the run's own saved config")
            if args.reward is not None:
                raise CliError("--reward: --resume reads the run's own saved reward weights")
            if args.road_network is not None:
                raise CliError("--road-network: --resume reads the run's own saved days")
            if getattr(args, "demand", None) is not None:
                raise CliError("--demand: --resume reads the run's own saved days")
            if uncertainty_from_args(args) is not None:
                raise CliError(
                    "--travel-noise, --no-show-rate, --service-delay: --resume reads the run's "
                    "own saved settings"
                )
            budget = {"max_days": args.days} if args.days else {}
            if budget_s:
                budget["max_seconds"] = budget_s
            result = resume_training(args.out, progress=not args.no_progress, **budget)
        else:
            config = kind.config_type.load(args.config) if args.config else kind.config_type()
            if args.days is None and budget_s is None:
                budget_s = DEFAULT_MINUTES * 60.0
            settings = RunSettings(
                max_days=args.days,
                max_seconds=budget_s,
                eval_every_days=args.eval_every,
                checkpoint_every_days=args.checkpoint_every,
                seed=args.seed,
                save_replay_buffer=not args.no_buffer_checkpoint,
            )
            days = training_days(args, kind.default_days)
            reward = reward_from_args(args)
            result = train(
                kind,
                config,
                args.out,
                days,
                settings,
                progress=not args.no_progress,
                reward=reward,
                uncertainty=uncertainty_from_args(args),
            )
    except (ConfigError, TrainingError, CheckpointError, ModelFileError, DaysError) as error:
        raise CliError(str(error)) from error
    print(describe_result(result))
    if args.json:
        atomic_write_json(args.json, result.summary())
        print(f"summary written to {args.json}")
    return 0


def describe_result(result: TrainResult) -> str:
    days = f"{result.days} day{'s' if result.days != 1 else ''}"
    lines = [
        f"trained {result.kind} for {days}, {result.decisions} decisions in "
        f"{result.wall_time_s:.0f} s ({result.decisions_per_second:.0f} decisions/s)"
        + (" — stopped by the time limit" if result.stopped_by_time_limit else "")
    ]
    if result.best_day is not None:
        lines.append(
            f"best model: {result.best_model_path} (after {result.best_day} days, mean "
            f"selection-day reward {result.best_eval_reward:.1f})"
        )
    lines.append(f"final model: {result.final_model_path}")
    lines.append(f"metrics: {result.metrics_path}; TensorBoard: {result.out_dir / 'tensorboard'}")
    lines.append(describe_folder_size(result.out_dir))
    return "\n".join(lines)


def unknown_option_message(args: argparse.Namespace, option: str) -> str:
    """The one line for an option ``train`` does not take with this ``--agent``."""
    return f"{option}: not an option of train --agent {args.agent} (see --help after --agent)"
