"""``rldispatch train``: train a DQN; TensorBoard logs, checkpoints and metrics in ``--out``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rldispatch.agents.dqn.config import DQNConfig, load_config
from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import env_config_for, positive_int
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.days import split_days_by_date
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.presets import PRESETS
from rldispatch.training.checkpoint import CheckpointError
from rldispatch.training.train import TrainingError, TrainResult, train, validation_days


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help=VERBS["train"],
        description="Train a Double-DQN on days of a preset or scenario files. The run folder "
        "gets TensorBoard logs, checkpoints, best/final models and training_metrics.json; "
        "--resume continues a run that was stopped or killed from its last checkpoint. "
        "--agent pairwise trains the pairwise Q-network, one model for any fleet size, on "
        "geneva-style days of 5 to 30 drivers (see docs/pairwise.md).",
    )
    parser.add_argument(
        "--agent",
        choices=("dqn", "pairwise"),
        default="dqn",
        help="dqn: the flat network of a fixed fleet shape (default); pairwise: any fleet",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset", choices=sorted(PRESETS), help="train on days of a preset (default: geneva)"
    )
    source.add_argument("--scenario", type=Path, help="train on one scenario file, replayed")
    source.add_argument("--scenarios", type=Path, help="train on a folder of scenario files")
    parser.add_argument(
        "--episodes",
        type=positive_int,
        help="training days in total (default 500; pairwise: until --max-minutes)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="hyperparameters, a JSON file (DQNConfig, or PairwiseTrainConfig for pairwise)",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    parser.add_argument(
        "--eval-every",
        type=non_negative_int,
        help="episodes between evaluations (default 50; pairwise: 20)",
    )
    parser.add_argument(
        "--eval-days",
        type=positive_int,
        help="fixed evaluation days (default 10; pairwise: 16)",
    )
    parser.add_argument(
        "--checkpoint-every", type=non_negative_int, default=50, help="episodes between checkpoints"
    )
    parser.add_argument(
        "--no-buffer-checkpoint",
        action="store_true",
        help="leave the replay buffer out of checkpoints (smaller; a resumed run refills it)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this much wall time (pairwise default: its config's, 20 minutes)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", type=str, help="write the training summary JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.agent == "pairwise":
        return run_pairwise(args)
    args.episodes = 500 if args.episodes is None else args.episodes
    args.eval_every = 50 if args.eval_every is None else args.eval_every
    args.eval_days = 10 if args.eval_days is None else args.eval_days
    config = read_config(args.config)
    preset = args.preset or "geneva"
    scenarios = None
    if args.scenario is not None:
        scenarios = [load_scenario(args.scenario)]
        preset = None
    elif args.scenarios is not None:
        # The later days of the folder are held out for evaluate; train on the earlier ones.
        training_paths, _ = split_days_by_date(args.scenarios)
        scenarios = [load_scenario(path) for path in training_paths]
        preset = None
    eval_days = (
        scenarios[: args.eval_days] if scenarios else validation_days(preset, args.eval_days)
    )
    env_config = env_config_for(scenarios) if scenarios else None
    try:
        result = train(
            config,
            args.out,
            args.episodes,
            preset=preset,
            scenarios=scenarios,
            env_config=env_config,
            seed=args.seed,
            resume=args.resume,
            eval_days=eval_days,
            eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
            max_wall_time_s=args.max_minutes * 60.0 if args.max_minutes else None,
            save_replay_buffer=not args.no_buffer_checkpoint,
        )
    except (TrainingError, CheckpointError, ModelFileError) as error:
        raise CliError(str(error)) from error
    print(describe_result(result))
    if args.json:
        atomic_write_json(args.json, result_summary(result))
        print(f"summary written to {args.json}")
    return 0


def read_config(path: Path | None) -> DQNConfig:
    if path is None:
        return DQNConfig()
    try:
        return load_config(path)
    except ValueError as error:
        raise CliError(str(error)) from error


def result_summary(result: TrainResult) -> dict:
    return {
        "out_dir": str(result.out_dir),
        "episodes": result.episodes,
        "total_steps": result.total_steps,
        "wall_time_s": result.wall_time_s,
        "steps_per_second": result.steps_per_second,
        "best_model": str(result.best_model_path) if result.best_model_path else None,
        "best_eval_reward": result.best_eval_reward,
        "best_episode": result.best_episode,
        "final_model": str(result.final_model_path),
        "metrics": str(result.metrics_path),
        "stopped_by_time_limit": result.stopped_by_time_limit,
    }


def describe_result(result: TrainResult) -> str:
    lines = [
        f"trained {result.episodes} episodes, {result.total_steps} steps in "
        f"{result.wall_time_s:.0f} s ({result.steps_per_second:.0f} steps/s)"
        + (" — stopped by the time limit" if result.stopped_by_time_limit else "")
    ]
    if result.best_model_path is not None:
        lines.append(
            f"best model: {result.best_model_path} (episode {result.best_episode}, "
            f"mean evaluation reward {result.best_eval_reward:.1f})"
        )
    lines.append(f"final model: {result.final_model_path}")
    lines.append(f"metrics: {result.metrics_path}; TensorBoard: {result.out_dir / 'tensorboard'}")
    return "\n".join(lines)


def run_pairwise(args: argparse.Namespace) -> int:
    """``train --agent pairwise``: days of every fleet size, until the time budget."""
    from dataclasses import replace

    from rldispatch.training.train_pairwise import PairwiseTrainConfig, pairwise_config_from_dict

    for flag, given in (
        ("--scenario", args.scenario),
        ("--scenarios", args.scenarios),
        ("--resume", args.resume or None),
    ):
        if given is not None:
            raise CliError(f"{flag}: not available with --agent pairwise")
    if args.preset not in (None, "geneva"):
        raise CliError("--preset: --agent pairwise trains on geneva-style days of any fleet size")
    config = PairwiseTrainConfig()
    if args.config is not None:
        try:
            config = pairwise_config_from_dict(json.loads(args.config.read_text()))
        except FileNotFoundError as error:
            raise CliError(f"{args.config}: no such config file") from error
        except json.JSONDecodeError as error:
            raise CliError(f"{args.config}: not JSON ({error})") from error
        except ValueError as error:
            raise CliError(f"{args.config}: {error}") from error
    overrides: dict = {"seed": args.seed}
    if args.eval_every is not None:
        overrides["eval_every_days"] = args.eval_every
    if args.eval_days is not None:
        overrides["eval_days"] = args.eval_days
    if args.episodes is not None:
        overrides["max_days"] = args.episodes
    if args.max_minutes is not None:
        overrides["max_wall_time_s"] = args.max_minutes * 60.0
    try:
        config = replace(config, **overrides)
    except ValueError as error:
        raise CliError(str(error)) from error
    result = run_pairwise_training(config, args.out, progress=not args.no_progress)
    best = result.best_eval_reward
    print(
        f"trained {result.days} days, {result.steps} decisions in {result.wall_time_s:.0f} s\n"
        f"best model: {result.best_model_path}"
        + (f" (mean evaluation reward {best:.1f})" if best is not None else "")
        + f"\nfinal model: {result.final_model_path}\nmetrics: {result.metrics_path}"
    )
    if args.json:
        summary = {
            "agent": "pairwise",
            "out_dir": str(result.out_dir),
            "days": result.days,
            "total_steps": result.steps,
            "wall_time_s": result.wall_time_s,
            "best_model": str(result.best_model_path),
            "best_eval_reward": best,
            "final_model": str(result.final_model_path),
            "metrics": str(result.metrics_path),
        }
        atomic_write_json(args.json, summary)
        print(f"summary written to {args.json}")
    return 0


def run_pairwise_training(config: Any, out: Path, progress: bool = True) -> Any:
    """Train a pairwise model with a progress bar over the time budget (or the days)."""
    from tqdm import tqdm

    from rldispatch.training.train_pairwise import train_pairwise

    budget = config.max_wall_time_s
    bar = tqdm(
        total=round(budget) if budget else config.max_days,
        unit="s" if budget else "day",
        disable=not progress,
        desc="pairwise",
    )

    def on_day(record: dict) -> None:
        bar.n = min(round(record["wall_time_s"]), bar.total) if budget else record["day"]
        bar.set_postfix(day=record["day"], reward=round(record["reward"]), refresh=False)
        bar.refresh()

    try:
        return train_pairwise(config, out, log=bar.write if progress else print, on_day=on_day)
    finally:
        bar.close()
