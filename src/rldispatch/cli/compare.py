"""``rldispatch compare``: several models, configs or baselines side by side, paired."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from rldispatch.agents.config_fields import ConfigError
from rldispatch.agents.kinds import DEFAULT_KIND, agent_kind, kind_names
from rldispatch.agents.model_files import LearnedModel, ModelFileError, load_learned_model
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    add_all_days_argument,
    add_day_arguments,
    add_jobs_argument,
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    choose_reward,
    env_config_for,
    positive_int,
    repeat_stochastic,
    reward_from_args,
    road_network_from_args,
    uncertainty_from_args,
    uncertainty_report,
)
from rldispatch.cli.evaluate import held_out_days
from rldispatch.cli.report_page import (
    add_html_arguments,
    html_day_indexes,
    html_route_days,
    write_page,
)
from rldispatch.files import atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.report import build_report, format_table
from rldispatch.training.days import FleetDays, PresetDays, RoadNetworkDays, TrainingDays
from rldispatch.training.evaluation import evaluate_policies
from rldispatch.training.train import RunSettings, TrainingError, train

GENERIC_MODEL_NAMES = {"best_model", "final_model", "model"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help=VERBS["compare"],
        description="Each ENTRY is a model file (.safetensors) of any kind, a config JSON of "
        "the --agent kind (such as tune's optimal_config.json: trained first, for "
        "--train-days, into --work-dir; its best model is compared) or a baseline name. "
        "Every entry plays the same held-out days (of a --scenarios folder, its latest dates; "
        "--all-days: all of them, dated or not); the report pairs the first entry with each "
        "of the others.",
    )
    parser.add_argument("entries", nargs="+", metavar="ENTRY", help="model, config or baseline")
    add_day_arguments(parser, default_episodes=30)
    add_all_days_argument(parser)
    parser.add_argument(
        "--agent",
        choices=kind_names(),
        default=DEFAULT_KIND,
        help=f"the kind of the config entries (default {DEFAULT_KIND})",
    )
    parser.add_argument(
        "--train-days",
        "--train-episodes",
        dest="train_days",
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
    add_reward_argument(parser)
    add_road_network_argument(parser)
    add_uncertainty_arguments(parser)
    add_jobs_argument(parser)
    parser.add_argument("--json", type=str, help="write the report JSON here")
    add_html_arguments(parser)
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
    """Train config ``path`` of ``--agent`` (or resume its run) and return its best model."""
    kind = agent_kind(args.agent)
    try:
        config = kind.config_type.load(path)
    except ConfigError as error:
        raise CliError(str(error)) from error
    out_dir = args.work_dir / path.stem
    if kind.default_days == "fleets" and args.preset is None:
        days: TrainingDays = FleetDays()
    else:
        days = PresetDays(args.preset or "geneva")
    road_network = road_network_from_args(args)
    if road_network is not None:  # trained on the roads it is compared on
        days = RoadNetworkDays(days, road_network)
    print(f"training {path} ({kind.name}) for {args.train_days} days into {out_dir}")
    every = max(1, args.train_days // 10)
    settings = RunSettings(
        max_days=args.train_days,
        eval_every_days=every,
        checkpoint_every_days=every,
        seed=args.seed,
    )
    resume = (out_dir / "checkpoints" / "resume.pt").exists()
    try:
        result = train(
            kind,
            config,
            out_dir,
            days,
            settings,
            resume=resume,
            reward=reward_from_args(args),
            uncertainty=uncertainty_from_args(args),
        )
    except TrainingError as error:
        raise CliError(str(error)) from error
    return load_learned_model(result.best_model_path, name=label)


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
    scenarios = days.scenarios
    reward = choose_reward(
        args, {label: model.env_config.reward for label, model in models.items()}
    )
    uncertainty = uncertainty_from_args(args)
    default_config = env_config_for(scenarios, reward=reward.weights, uncertainty=uncertainty)
    env_configs = {
        name: replace(
            models[name].env_config_for(scenarios),
            reward=reward.weights,
            uncertainty=uncertainty,
        )
        if name in models
        else default_config
        for name in policies
    }
    day_indexes = html_day_indexes(args, days) if args.html else []
    try:
        results = evaluate_policies(policies, scenarios, env_configs, progress=True, jobs=args.jobs)
    except (ModelFileError, ValueError) as error:
        raise CliError(str(error)) from error
    names = list(policies)
    pairs = [(names[0], other) for other in names[1:]]
    extra = {
        "models": {label: model.info() for label, model in models.items()},
        "repeats": repeat_stochastic(
            results, policies, days, default_config, args.repeats, args.jobs
        ),
        **days.report_fields(),
        **reward.report_fields(),
        **uncertainty_report(uncertainty),
    }
    route_days = html_route_days(day_indexes, days, policies, results, env_configs)
    report = build_report(days.name, days.labels, results, pairs, extra=extra)
    print(format_table(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report written to {args.json}")
    if args.html:
        write_page(args, report, route_days)
    return 0
