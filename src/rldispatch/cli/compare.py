"""``rldispatch compare``: several models, configs or baselines side by side, paired."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rldispatch.agents.dqn.config import load_config
from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.model_files import LearnedModel, load_learned_model
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    add_day_arguments,
    add_jobs_argument,
    env_config_for,
    positive_int,
)
from rldispatch.cli.evaluate import held_out_days
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.report import build_report, format_table
from rldispatch.training.evaluation import evaluate_policies
from rldispatch.training.train import TrainingError, train, validation_days

GENERIC_MODEL_NAMES = {"best_model", "final_model", "model"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help=VERBS["compare"],
        description="Each ENTRY is a model file (.safetensors), a DQN config JSON (trained "
        "first, for --train-episodes on the preset, into --work-dir; its best model is "
        "compared) or a baseline name. Every entry plays the same held-out days; the report "
        "pairs the first entry with each of the others.",
    )
    parser.add_argument("entries", nargs="+", metavar="ENTRY", help="model, config or baseline")
    add_day_arguments(parser, default_episodes=30)
    parser.add_argument(
        "--train-episodes",
        type=positive_int,
        default=300,
        help="training days for each config entry (default 300)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("runs/compare"),
        help="where config entries are trained (default runs/compare)",
    )
    add_jobs_argument(parser)
    parser.add_argument("--json", type=str, help="write the report JSON here")
    parser.set_defaults(handler=run)


def entry_label(path: Path) -> str:
    if path.stem in GENERIC_MODEL_NAMES and path.parent.name:
        return f"{path.parent.name}/{path.stem}"
    return path.stem


def unique(label: str, taken: dict[str, Any]) -> str:
    candidate, k = label, 2
    while candidate in taken:
        candidate, k = f"{label}-{k}", k + 1
    return candidate


def train_config_entry(path: Path, args: argparse.Namespace, label: str) -> LearnedModel:
    """Train config ``path`` (or resume its run) and return its best model."""
    try:
        config = load_config(path)
    except ValueError as error:
        raise CliError(str(error)) from error
    preset = args.preset or "geneva"
    out_dir = args.work_dir / path.stem
    print(f"training {path} for {args.train_episodes} episodes into {out_dir}")
    try:
        result = train(
            config,
            out_dir,
            args.train_episodes,
            preset=preset,
            seed=args.seed,
            resume=True,
            eval_days=validation_days(preset),
            eval_every=max(1, args.train_episodes // 10),
            checkpoint_every=max(1, args.train_episodes // 10),
        )
    except TrainingError as error:
        raise CliError(str(error)) from error
    return load_learned_model(result.best_model_path or result.final_model_path, name=label)


def env_config_for_all(models: dict[str, LearnedModel], days: list[Scenario]) -> EnvConfig:
    """One env config every model can play: a flat model's own (its slots are fixed; flat
    models of other shapes are refused when they play), else enough slots for every day."""
    flat = [model for model in models.values() if model.kind == "dqn"]
    if flat:
        return flat[0].env_config
    if models:
        return next(iter(models.values())).env_config_for(days)
    return env_config_for(days)


def run(args: argparse.Namespace) -> int:
    policies: dict[str, Policy] = {}
    models: dict[str, LearnedModel] = {}
    for entry in args.entries:
        if entry in BASELINES:
            policies[unique(entry, policies)] = make_baseline(entry, seed=args.seed)
            continue
        path = Path(entry)
        if not path.exists():
            raise CliError(f"{entry}: neither a file nor a baseline ({', '.join(BASELINES)})")
        label = unique(entry_label(path), policies)
        try:
            if path.suffix == ".json":
                model = train_config_entry(path, args, label)
            else:
                model = load_learned_model(path, name=label)
        except ModelFileError as error:
            raise CliError(str(error)) from error
        policies[label] = model.policy
        models[label] = model
    if len(policies) < 2:
        raise CliError("compare needs at least two entries")
    first = next(iter(models.values()), None)
    days = held_out_days(args, first.preset if first else None)
    try:
        results = evaluate_policies(
            policies,
            days.scenarios,
            env_config_for_all(models, days.scenarios),
            progress=True,
            jobs=args.jobs,
        )
    except ModelFileError as error:
        raise CliError(str(error)) from error
    names = list(policies)
    pairs = [(names[0], other) for other in names[1:]]
    extra = {"models": {label: model.info() for label, model in models.items()}}
    report = build_report(days.name, days.labels, results, pairs, extra=extra)
    print(format_table(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report written to {args.json}")
    return 0
