"""A report as one self-contained HTML page a person reads.

The page holds the table of every policy (mean and 95% CI, which way is better), the paired
differences in words, the comparison chart (a PNG inside the page) and, per chosen day, an
interactive map of the routes (inline SVG: hover a stop or a leg for what happened there,
click a driver to pick out its route, scroll to zoom). Nothing is loaded from elsewhere: the
file opens offline, is mailed as it is and shows the same in every browser.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.files import atomic_write_text
from rldispatch.reports.basemap import tiles_dir_from
from rldispatch.reports.plots import plot_comparison
from rldispatch.reports.report import TABLE_COLUMNS, better_way
from rldispatch.reports.route_map import DayRoutes
from rldispatch.reports.route_svg import route_map_section
from rldispatch.text import plural

FIGURE_RANGES = {
    "completion_rate": (0.0, 1.0),
    "late_pickup_rate": (0.0, 1.0),
    "cancelled": (0.0, np.inf),
    "distance_km": (0.0, np.inf),
    "empty_km": (0.0, np.inf),
    "pickup_delay_p95_min": (0.0, np.inf),
    "load_gap": (0.0, np.inf),
}
"""The values a figure can take: its confidence interval is shown within them."""

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th small { font-weight: normal; color: #666; display: block; }
td.best { font-weight: bold; background: #eef7ee; }
td small { color: #777; }
.better { color: #007766; } .worse { color: #bb2200; } .unsure { color: #666; }
.note { color: #555; font-size: 0.9em; }
img.chart { max-width: 100%; border: 1px solid #eee; }
.map { display: flex; gap: 1em; align-items: flex-start; flex-wrap: wrap; }
.map svg { border: 1px solid #ccc; background: #fafafa; cursor: grab; max-width: 100%;
           height: auto; }
.map ul { list-style: none; padding: 0; margin: 0; font-size: 0.85em; columns: 2; }
.map li { cursor: pointer; padding: 0.1em 0.3em; white-space: nowrap; }
.map li.on { background: #ffe9a8; }
.swatch { display: inline-block; width: 1.6em; height: 0.35em; vertical-align: middle;
          margin-right: 0.4em; }
svg .driver.dim { opacity: 0.12; }
svg .driver:hover .leg { stroke-width: 3.5; }
"""

PAGE_SCRIPT = """
document.querySelectorAll('.map').forEach(function (map) {
  var svg = map.querySelector('svg');
  var items = map.querySelectorAll('li[data-driver]');
  var chosen = null;
  items.forEach(function (item) {
    item.addEventListener('click', function () {
      chosen = chosen === item.dataset.driver ? null : item.dataset.driver;
      items.forEach(function (other) {
        other.classList.toggle('on', other.dataset.driver === chosen);
      });
      svg.querySelectorAll('g.driver').forEach(function (group) {
        group.classList.toggle('dim', chosen !== null && group.dataset.driver !== chosen);
      });
    });
  });
  var box = svg.viewBox.baseVal;
  var full = [box.x, box.y, box.width, box.height];
  svg.addEventListener('wheel', function (event) {
    event.preventDefault();
    var rect = svg.getBoundingClientRect();
    var fx = (event.clientX - rect.left) / rect.width;
    var fy = (event.clientY - rect.top) / rect.height;
    var scale = event.deltaY > 0 ? 1.25 : 0.8;
    var width = Math.min(full[2], box.width * scale);
    var height = Math.min(full[3], box.height * scale);
    box.x = box.x + (box.width - width) * fx; box.y = box.y + (box.height - height) * fy;
    box.width = width; box.height = height;
  }, {passive: false});
  var drag = null;
  svg.addEventListener('mousedown', function (event) { drag = [event.clientX, event.clientY]; });
  window.addEventListener('mouseup', function () { drag = null; });
  svg.addEventListener('mousemove', function (event) {
    if (!drag) return;
    var rect = svg.getBoundingClientRect();
    box.x -= (event.clientX - drag[0]) * box.width / rect.width;
    box.y -= (event.clientY - drag[1]) * box.height / rect.height;
    drag = [event.clientX, event.clientY];
  });
  svg.addEventListener('dblclick', function () {
    box.x = full[0]; box.y = full[1]; box.width = full[2]; box.height = full[3];
  });
});
"""


def write_report_page(
    path: str | Path,
    report: Mapping[str, Any],
    route_days: Sequence[DayRoutes] = (),
    title: str | None = None,
    tiles_dir: str | Path | None = None,
) -> Path:
    """Write the report's page to ``path`` (atomically); see :func:`report_page`."""
    return atomic_write_text(path, report_page(report, route_days, title, tiles_dir))


def report_page(
    report: Mapping[str, Any],
    route_days: Sequence[DayRoutes] = (),
    title: str | None = None,
    tiles_dir: str | Path | None = None,
) -> str:
    """The page of ``report`` (the report JSON of evaluate, compare or simulate), with a routes
    map for each of ``route_days``; map tiles from ``tiles_dir`` (or ``RLDISPATCH_TILES_DIR``)
    are embedded under the routes where they cover a day."""
    title = title or f"rldispatch report: {report.get('scenario', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        _days_section(report),
        "<h2>Every policy on the same days</h2>",
        policy_table(report),
        paired_section(report),
        _extra_lines(report),
        "<h2>Charts</h2>",
        _chart(report),
    ]
    tiles = tiles_dir_from(tiles_dir)
    for day in route_days:
        parts.append(
            f"<h2>Routes of {_text(day.policy)} on {_text(day.scenario.name)}</h2>"
            + route_map_section(day, tiles)
        )
    parts.append(f"<script>{PAGE_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _days_section(report: Mapping[str, Any]) -> str:
    days = int(report.get("days", report.get("episodes", 0)))
    statistics = report.get("statistics", {})
    lines = [f"{plural(days, 'distinct day')} of {_text(report.get('scenario', ''))}"]
    held_out = report.get("held_out_days")
    if held_out:
        lines.append(
            f"held out of a folder of {report.get('folder_days')} days: "
            f"{_text(', '.join(map(str, held_out)))}"
        )
    elif report.get("seeds"):
        seeds = [str(seed) for seed in report["seeds"]]
        shown = ", ".join(seeds) if len(seeds) <= 12 else f"{seeds[0]} … {seeds[-1]}"
        lines.append(f"days: {_text(shown)}")
    if statistics.get("reason"):
        lines.append(f"no confidence intervals: {_text(statistics['reason'])}")
    else:
        lines.append("means with their 95% confidence intervals over the days")
    return '<p class="note">' + "<br>".join(lines) + "</p>"


def policy_table(report: Mapping[str, Any]) -> str:
    """Every policy's mean (and 95% CI) per figure; the best value of each column in bold."""
    policies = report["policies"]
    head = "".join(
        f"<th>{_text(label)}<small>{_text(better_way(metric))}</small></th>"
        for metric, label, _ in TABLE_COLUMNS
    )
    best = {metric: _best_policy(policies, metric) for metric, _, _ in TABLE_COLUMNS}
    rows = []
    for name, figures in policies.items():
        cells = []
        for metric, _, fmt in TABLE_COLUMNS:
            summary = figures.get(metric)
            if summary is None:
                cells.append("<td>–</td>")
                continue
            text = _text(fmt.format(summary["mean"]))
            if summary.get("ci95") is not None:
                low, high = np.clip(summary["ci95"], *FIGURE_RANGES.get(metric, (-np.inf, np.inf)))
                text += f"<br><small>{_text(fmt.format(low))} to {_text(fmt.format(high))}</small>"
            marked = ' class="best"' if best[metric] == name else ""
            cells.append(f"<td{marked}>{text}</td>")
        rows.append(f"<tr><td>{_text(name)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>policy</th>{head}</tr>{''.join(rows)}</table>"


def _best_policy(policies: Mapping[str, Any], metric: str) -> str | None:
    way = better_way(metric)
    means = {
        name: figures[metric]["mean"]
        for name, figures in policies.items()
        if name != "hindsight" and metric in figures
    }
    if not way or len(means) < 2 or len(set(means.values())) < 2:
        return None
    pick = max if way.startswith("higher") else min
    return pick(means, key=means.__getitem__)


def paired_verdict(pair: Mapping[str, Any], first: str, other: str) -> tuple[str, str]:
    """The CSS class and the words for one paired reward difference ``first - other``."""
    if pair.get("ci95") is None:
        return "unsure", f"not judged ({pair.get('reason', 'no confidence interval')})"
    low, high = pair["ci95"]
    if low > 0:
        return "better", f"{first} is better than {other}"
    if high < 0:
        return "worse", f"{first} is worse than {other}"
    return "unsure", f"{first} and {other} are not distinguishable on these days"


def paired_section(report: Mapping[str, Any]) -> str:
    """The paired reward differences, each with which way is better and what its CI says."""
    paired = report.get("paired", {})
    if not paired:
        return ""
    rows = []
    for name, pair in paired.items():
        first, _, other = name.partition("_vs_")
        css, words = paired_verdict(pair, first, other)
        interval = "–"
        if pair.get("ci95") is not None:
            low, high = pair["ci95"]
            interval = f"{low:+.1f} to {high:+.1f}"
        p_value = pair.get("p_value")
        rows.append(
            f"<tr><td>{_text(first)} − {_text(other)}</td>"
            f"<td>{pair['reward_diff_mean']:+.1f}</td><td>{_text(interval)}</td>"
            f"<td>{'–' if p_value is None else f'{p_value:.3g}'}</td>"
            f'<td class="{css}" style="text-align:left">{_text(words)}</td></tr>'
        )
    return (
        "<h2>Paired differences (same days)</h2>"
        '<p class="note">Reward per day, the first policy minus the other on each day: '
        "higher is better, so above 0 the first policy earned more.</p>"
        "<table><tr><th>pair</th><th>mean</th><th>95% CI</th><th>p</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _extra_lines(report: Mapping[str, Any]) -> str:
    lines = []
    for name, timing in report.get("decision_time_ms", {}).items():
        lines.append(
            f"{_text(name)}: decision time mean {timing['mean']:.2f} ms, p99 {timing['p99']:.2f} ms"
        )
    for name, regret in report.get("regret", {}).items():
        lines.append(
            f"{_text(name)}: {regret['mean']:.1f} reward per day below the hindsight plan "
            "(lower is better)"
        )
    return '<p class="note">' + "<br>".join(lines) + "</p>" if lines else ""


def _chart(report: Mapping[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as folder:
        png = plot_comparison(report, Path(folder) / "comparison.png").read_bytes()
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="chart" alt="each policy\'s figures with 95% CIs and the paired reward '
        f'differences" src="data:image/png;base64,{encoded}">'
    )
