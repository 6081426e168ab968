"""``rldispatch plot``: training curves, a report's comparison chart, a day's routes (PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import VERBS, CliError
from rldispatch.domain import ScenarioError
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.plots import (
    load_training_curves,
    plot_comparison,
    plot_routes,
    plot_training_curves,
    record_routes,
)
from rldispatch.scenarios.files import load_scenario, parse_json_text, read_limited_bytes
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, PRESETS, make_preset

REPORT_JSON_DEPTH = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help=VERBS["plot"])
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    training = kinds.add_parser(
        "training", help="training curves of a run (training_metrics.json or TensorBoard logs)"
    )
    training.add_argument(
        "source", type=Path, help="run folder, training_metrics.json or TensorBoard log folder"
    )
    training.add_argument("--out", type=Path, required=True, help="PNG file to write")

    report = kinds.add_parser("report", help="comparison chart of an evaluate/compare report")
    report.add_argument("report", type=Path, help="report JSON")
    report.add_argument("--out", type=Path, required=True, help="PNG file to write")

    routes = kinds.add_parser("routes", help="one day's routes on a map")
    who = routes.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", type=Path, help="a model file")
    who.add_argument("--policy", choices=sorted(BASELINES), help="a baseline policy")
    day = routes.add_mutually_exclusive_group()
    day.add_argument("--preset", choices=sorted(PRESETS), help="a preset day (default geneva)")
    day.add_argument("--scenario", type=Path, help="a scenario file")
    routes.add_argument(
        "--day-seed",
        type=int,
        default=HELD_OUT_SEEDS.start,
        help=f"seed of the preset day (default {HELD_OUT_SEEDS.start}, the first held-out day)",
    )
    routes.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "training":
        curves = load_training_curves(args.source)
        if curves["reward"].steps.size == 0:
            raise CliError(f"{args.source}: no episodes recorded yet")
        path = plot_training_curves(curves, args.out, title=f"training: {args.source}")
    elif args.kind == "report":
        report = read_report(args.report)
        try:
            path = plot_comparison(report, args.out)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CliError(f"{args.report}: not a report JSON ({error})") from error
    else:
        path = plot_day(args)
    print(f"plot written to {path}")
    return 0


def read_report(path: Path) -> dict:
    """A report JSON file as a dict; anything else is one :class:`CliError` line."""
    try:
        report = parse_json_text(
            read_limited_bytes(path, what="report file"), str(path), REPORT_JSON_DEPTH
        )
    except ScenarioError as error:
        raise CliError(str(error)) from None
    if not isinstance(report, dict) or not isinstance(report.get("policies"), dict):
        raise CliError(f"{path}: not a report JSON (no 'policies' object)")
    return report


def plot_day(args: argparse.Namespace) -> Path:
    model = None
    if args.model is not None:
        try:
            model = load_learned_model(args.model)
        except ModelFileError as error:
            raise CliError(str(error)) from error
        policy = model.policy
        preset = args.preset or model.preset or "geneva"
    else:
        policy = make_baseline(args.policy)
        preset = args.preset or "geneva"
    scenario = load_scenario(args.scenario) if args.scenario else make_preset(preset, args.day_seed)
    env_config = model.env_config_for([scenario]) if model is not None else None
    try:
        day = record_routes(policy, scenario, env_config)
    except ModelFileError as error:
        raise CliError(str(error)) from error
    return plot_routes(day, args.out)
