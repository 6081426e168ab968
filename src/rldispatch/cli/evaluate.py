"""``rldispatch evaluate``: a model (and every baseline) on the same held-out days."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.kinds import agent_kind
from rldispatch.agents.model_files import LearnedModel, load_learned_model
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    DAYS_HELP,
    Days,
    add_all_days_argument,
    add_day_arguments,
    add_hindsight,
    add_hindsight_arguments,
    add_jobs_argument,
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    choose_reward,
    days_from_args,
    repeat_stochastic,
    say_road_network_differences,
    uncertainty_from_args,
    uncertainty_report,
)
from rldispatch.cli.report_page import (
    add_html_arguments,
    html_day_indexes,
    html_route_days,
    write_page,
)
from rldispatch.domain import ScenarioError
from rldispatch.files import atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.report import build_report, format_table
from rldispatch.scenarios.days import split_days_by_date
from rldispatch.scenarios.presets import HELD_OUT_SEEDS
from rldispatch.training.evaluation import evaluate_policies

BASELINE_ORDER = ("random", "nearest", "insertion", "matching")
COMPARED_BASELINES = (*BASELINE_ORDER, "reopt")
"""``--compare-baseline``: the quick baselines and re-optimisation."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help=VERBS["evaluate"],
        description="Play a trained model (and with --compare-baseline every baseline) on "
        "the same days. Preset days are held-out days (seeds from 2,000,000 + --seed), "
        "never seen in training or tuning; the preset defaults to the model's own. A --scenarios "
        f"folder is split by date and its latest dates are held out (and listed); --all-days plays "
        f"all of them, dated or not. {DAYS_HELP}",
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="a model file (.safetensors): flat DQN or pairwise (any fleet size)",
    )
    add_day_arguments(parser, default_episodes=30)
    add_all_days_argument(parser)
    parser.add_argument(
        "--compare-baseline",
        action="store_true",
        help="also run random, nearest, insertion, matching and reopt on the same days",
    )
    parser.add_argument(
        "--lookahead",
        type=int,
        default=0,
        metavar="N",
        help="also play the model with a look ahead: at each decision N assignments (a "
        "pairwise model's N best pairs; a guided-reopt model's own action and the known "
        "reward's N best) are played on, on a copy of the day that knows only the bookings "
        "known then, and the one that ends best is taken (tenths of a second a decision; "
        "default 0: not played)",
    )
    add_hindsight_arguments(parser)
    add_reward_argument(parser)
    add_road_network_argument(parser)
    add_uncertainty_arguments(parser)
    add_jobs_argument(parser)
    parser.add_argument("--json", type=str, help="write the report JSON here")
    add_html_arguments(parser)
    parser.set_defaults(handler=run)


def load_model_or_fail(path: Path, name: str | None = None) -> LearnedModel:
    try:
        return load_learned_model(path, name=name)
    except ModelFileError as error:
        raise CliError(str(error)) from error


def lookahead_policy(model: LearnedModel, candidates: int) -> Policy:
    """``model`` with its kind's look ahead on ``candidates`` assignments a decision."""
    if candidates < 1:
        raise CliError(f"--lookahead: must be at least 1, got {candidates}")
    policy = agent_kind(model.kind).lookahead_policy(model, candidates)
    if policy is None:
        raise CliError(f"--lookahead: a {model.kind} model ({model.path}) has no look ahead")
    return policy


def held_out_days(args: argparse.Namespace, default_preset: str | None) -> Days:
    """The days named on the command line; preset days are held-out days, a folder's are its
    held-out latest dates (every day of it with ``--all-days``)."""
    all_days = getattr(args, "all_days", False)
    if all_days and args.scenarios is None:
        raise CliError("--all-days: only with --scenarios (a folder of days)")
    if args.scenario is None and args.scenarios is None and args.preset is None:
        args.preset = default_preset or "geneva"
    if args.scenarios is not None and not all_days:
        try:
            split_days_by_date(args.scenarios)
        except ScenarioError as error:
            raise CliError(f"{error} (--all-days plays every day of the folder)") from error
    return days_from_args(
        args,
        first_preset_seed=HELD_OUT_SEEDS.start,
        folder_part="all" if all_days else "held_out",
    )


def run(args: argparse.Namespace) -> int:
    model = load_model_or_fail(args.model)
    days = held_out_days(args, model.preset)
    name = model.policy.name
    policies: dict[str, Policy] = {name: model.policy}
    if args.lookahead:
        policies[f"{name}+lookahead"] = lookahead_policy(model, args.lookahead)
    if args.compare_baseline:
        policies |= {other: make_baseline(other, seed=args.seed) for other in COMPARED_BASELINES}
    reward = choose_reward(args, {name: model.env_config.reward})
    roads = say_road_network_differences({name: model.road_network}, days.scenarios)
    uncertainty = uncertainty_from_args(args)
    env_config = replace(
        model.env_config_for(days.scenarios), reward=reward.weights, uncertainty=uncertainty
    )
    day_indexes = html_day_indexes(args, days) if args.html else []
    try:
        results = evaluate_policies(
            policies, days.scenarios, env_config, progress=True, jobs=args.jobs
        )
    except ModelFileError as error:
        raise CliError(str(error)) from error
    pairs = [(name, other) for other in policies if other != name]
    extra: dict[str, Any] = {
        "model": model.info(),
        "repeats": repeat_stochastic(results, policies, days, env_config, args.repeats, args.jobs),
        **days.report_fields(),
        **reward.report_fields(),
        **uncertainty_report(uncertainty),
        **({"road_network_override": roads} if roads else {}),
    }
    route_days = html_route_days(day_indexes, days, policies, results, env_config)
    if args.hindsight:
        add_hindsight(
            results,
            days.scenarios,
            args.hindsight_time_limit,
            extra,
            args.jobs,
            reward.weights,
            uncertainty,
        )
    report = build_report(days.name, days.labels, results, pairs, extra=extra)
    print(format_table(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report written to {args.json}")
    if args.html:
        write_page(args, report, route_days)
    return 0


def baseline_names() -> list[str]:
    return [name for name in BASELINE_ORDER if name in BASELINES]
