"""``rldispatch simulate``: one policy on a set of days, the metrics table."""

from __future__ import annotations

import argparse

from rldispatch.cli import VERBS
from rldispatch.cli.common import (
    DAYS_HELP,
    add_day_arguments,
    add_hindsight,
    add_hindsight_arguments,
    add_jobs_argument,
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    choose_reward,
    days_from_args,
    env_config_for,
    repeat_stochastic,
    uncertainty_from_args,
    uncertainty_report,
)
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.report import build_report, format_table
from rldispatch.training.evaluation import evaluate_policy


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help=VERBS["simulate"],
        description=f"Run baseline policies on the same days. {DAYS_HELP}",
    )
    add_day_arguments(parser)
    parser.add_argument(
        "--policy",
        default="all",
        choices=["all", *sorted(BASELINES)],
        help="a baseline policy, or all of them on the same days (default)",
    )
    add_hindsight_arguments(parser)
    add_reward_argument(parser)
    add_road_network_argument(parser)
    add_uncertainty_arguments(parser)
    add_jobs_argument(parser)
    parser.add_argument("--json", type=str, help="write the report JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    days = days_from_args(args)
    reward = choose_reward(args)
    uncertainty = uncertainty_from_args(args)
    env_config = env_config_for(days.scenarios, reward=reward.weights, uncertainty=uncertainty)
    names = sorted(BASELINES) if args.policy == "all" else [args.policy]
    results = {}
    policies = {name: make_baseline(name, seed=args.seed) for name in names}
    for name, policy in policies.items():
        results[name] = evaluate_policy(
            policy, days.scenarios, env_config, progress=True, label=name, jobs=args.jobs
        )
    extra: dict = {
        "repeats": repeat_stochastic(results, policies, days, env_config, args.repeats, args.jobs),
        **days.report_fields(),
        **reward.report_fields(),
        **uncertainty_report(uncertainty),
    }
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
    report = build_report(days.name, days.labels, results, extra=extra)
    print(format_table(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report written to {args.json}")
    return 0
