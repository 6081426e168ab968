"""``--html``: the report as one page a person reads (evaluate, compare), with the routes of
chosen days mapped."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rldispatch.cli import CliError
from rldispatch.cli.common import Days
from rldispatch.env import EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.reports.route_map import DayRoutes, record_routes


def add_html_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="also write the report as one self-contained HTML page: the table, the paired "
        "differences with which way is better, the charts and an interactive routes map per "
        "--html-day (opens offline)",
    )
    parser.add_argument(
        "--html-day",
        action="append",
        metavar="DAY",
        help="a day whose routes the page maps, by its label in the report (a preset day's "
        "seed or a file's name without .json); repeatable (default: the first day)",
    )
    parser.add_argument(
        "--tiles",
        type=Path,
        help="a folder of map tiles ({zoom}/{x}/{y}.png) embedded as the page's basemap where "
        "it covers a day (env RLDISPATCH_TILES_DIR; default: none, nothing is downloaded)",
    )


def html_day_indexes(args: argparse.Namespace, days: Days) -> list[int]:
    """The days (indexes into ``days``) whose routes the page maps: each ``--html-day``,
    else the first day."""
    labels = [str(label) for label in days.labels]
    wanted = args.html_day or [labels[0]]
    for day in wanted:
        if day not in labels:
            shown = ", ".join(labels[:5]) + (" ..." if len(labels) > 5 else "")
            raise CliError(f"--html-day: {day!r} is not a day of the report ({shown})")
    return [labels.index(day) for day in wanted]


def html_route_days(
    day_indexes: list[int],
    days: Days,
    policies: dict[str, Policy],
    results: dict[str, list[Any]],
    env_config: EnvConfig | Mapping[str, EnvConfig],
) -> list[DayRoutes]:
    """The routes the page maps: on each chosen day, the first policy's and the best other
    policy's by mean reward (``env_config``: one for all, or each policy's)."""
    names = list(policies)
    shown = names[:1]
    others = [name for name in names[1:] if results.get(name)]
    if others:
        mean = {
            name: sum(day.reward for day in results[name]) / len(results[name]) for name in others
        }
        shown.append(max(others, key=mean.__getitem__))
    configs = env_config if isinstance(env_config, Mapping) else dict.fromkeys(names, env_config)
    return [
        record_routes(policies[name], days.scenarios[index], configs[name])
        for index in day_indexes
        for name in shown
    ]


def write_page(
    args: argparse.Namespace, report: dict[str, Any], route_days: list[DayRoutes]
) -> None:
    """Write ``--html``'s page of ``report`` with the maps of ``route_days``."""
    from rldispatch.reports.html import write_report_page

    write_report_page(args.html, report, route_days, tiles_dir=args.tiles)
    print(f"page written to {args.html}")
