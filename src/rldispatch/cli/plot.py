"""``rldispatch plot``: training curves, a report's comparison chart (PNG or an HTML page),
a day's routes (PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import env_config_for, positive_int
from rldispatch.domain import ScenarioError
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.reports.plots import (
    DayRoutes,
    load_training_curves,
    plot_comparison,
    plot_route_panels,
    plot_routes,
    plot_training_curves,
    record_routes,
)
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, PRESETS, make_preset
from rldispatch.scenarios.reading import parse_json_text, read_limited_bytes

REPORT_JSON_DEPTH = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help=VERBS["plot"])
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    training = kinds.add_parser(
        "training", help="training curves of a run (training_metrics.json or TensorBoard logs)"
    )
    training.add_argument(
        "source",
        type=Path,
        help="run folder (or a quickstart folder), training_metrics.json or TensorBoard log folder",
    )
    training.add_argument("--out", type=Path, required=True, help="PNG file to write")
    training.add_argument(
        "--window", type=positive_int, default=50, help="days in the moving mean (default 50)"
    )

    report = kinds.add_parser("report", help="comparison chart of an evaluate/compare report")
    report.add_argument("report", type=Path, help="report JSON")
    report.add_argument("--out", type=Path, help="PNG file to write")
    report.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="a self-contained HTML page of the report: table, paired differences with which "
        "way is better, the chart (evaluate --html also maps the routes of chosen days)",
    )

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
    routes.add_argument(
        "--tiles",
        type=Path,
        help="a folder of map tiles ({zoom}/{x}/{y}.png, OpenStreetMap numbering) drawn as a "
        "light basemap where it covers the day (env RLDISPATCH_TILES_DIR; default: none, "
        "nothing is downloaded)",
    )
    routes.add_argument(
        "--per-driver",
        action="store_true",
        help="also a panel per driver, written beside --out as NAME-drivers.png",
    )
    for kind in (training, report, routes):
        kind.add_argument("--json", type=Path, help="write what was plotted as JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    summary: dict[str, Any] = {"kind": args.kind}
    if args.kind == "training":
        try:
            curves = load_training_curves(args.source)
        except (ValueError, KeyError, TypeError) as error:
            raise CliError(f"{args.source}: not readable training metrics ({error})") from None
        reward = curves["reward"]
        if reward.steps.size == 0:
            raise CliError(f"{args.source}: no episodes recorded yet")
        paths = [
            plot_training_curves(
                curves, args.out, title=f"training: {args.source}", window=args.window
            )
        ]
        summary |= {
            "source": str(args.source),
            "days": int(reward.steps.size),
            "evaluations": int(curves["eval_reward"].steps.size),
            "fleet_sizes": sorted({int(n) for n in reward.drivers})
            if reward.drivers is not None
            else None,
        }
    elif args.kind == "report":
        if args.out is None and args.html is None:
            raise CliError("give --out PNG, --html PAGE or both")
        report = read_report(args.report)
        try:
            paths = [plot_comparison(report, args.out)] if args.out is not None else []
            if args.html is not None:
                from rldispatch.reports.html import write_report_page

                paths.append(write_report_page(args.html, report))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CliError(f"{args.report}: not a report JSON ({error})") from error
        summary |= {
            "report": str(args.report),
            "policies": list(report["policies"]),
            "days": report.get("days", report.get("episodes")),
        }
    else:
        paths, day = plot_day(args)
        summary |= {
            "scenario": day.scenario.name,
            "policy": day.policy,
            "drivers": len(day.scenario.drivers),
            "metrics": day.metrics.as_dict(),
        }
    for path in paths:
        print(f"{'page' if path.suffix == '.html' else 'plot'} written to {path}")
    if args.json is not None:
        atomic_write_json(args.json, {**summary, "png": [str(path) for path in paths]})
        print(f"summary written to {args.json}")
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


def plot_day(args: argparse.Namespace) -> tuple[list[Path], DayRoutes]:
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
    env_config = (
        model.env_config_for([scenario]) if model is not None else env_config_for([scenario])
    )
    try:
        day = record_routes(policy, scenario, env_config)
    except ModelFileError as error:
        raise CliError(str(error)) from error
    paths = [plot_routes(day, args.out, tiles_dir=args.tiles)]
    if args.per_driver:
        panels = args.out.with_name(f"{args.out.stem}-drivers{args.out.suffix or '.png'}")
        paths.append(plot_route_panels(day, panels))
    return paths, day
