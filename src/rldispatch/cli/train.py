"""``rldispatch train``: train a DQN; TensorBoard logs, checkpoints and metrics in ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rldispatch.agents.dqn.config import DQNConfig, load_config
from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.cli import CliError
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
        help="train a DQN dispatch policy",
        description="Train a Double-DQN on days of a preset or scenario files. The run folder "
        "gets TensorBoard logs, checkpoints, best/final models and training_metrics.json; "
        "--resume continues a run that was stopped or killed from its last checkpoint.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset", choices=sorted(PRESETS), help="train on days of a preset (default: geneva)"
    )
    source.add_argument("--scenario", type=Path, help="train on one scenario file, replayed")
    source.add_argument("--scenarios", type=Path, help="train on a folder of scenario files")
    parser.add_argument(
        "--episodes", type=positive_int, default=500, help="training days in total (default 500)"
    )
    parser.add_argument("--config", type=Path, help="DQN hyperparameters, a JSON file")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    parser.add_argument(
        "--eval-every", type=non_negative_int, default=50, help="episodes between evaluations"
    )
    parser.add_argument(
        "--eval-days", type=positive_int, default=10, help="fixed evaluation days (default 10)"
    )
    parser.add_argument(
        "--checkpoint-every", type=non_negative_int, default=50, help="episodes between checkpoints"
    )
    parser.add_argument(
        "--no-buffer-checkpoint",
        action="store_true",
        help="leave the replay buffer out of checkpoints (smaller; a resumed run refills it)",
    )
    parser.add_argument("--max-minutes", type=float, help="stop after this much wall time")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", type=str, help="write the training summary JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
