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
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.files import atomic_write_text
from rldispatch.reports.basemap import ATTRIBUTION, covering_tiles, tiles_dir_from
from rldispatch.reports.plots import plot_comparison
from rldispatch.reports.report import TABLE_COLUMNS, better_way
from rldispatch.reports.route_map import DayRoutes, depot_name, depots, driver_colors
from rldispatch.text import plural

MAP_WIDTH_PX = 900
MAP_HEIGHT_PX = 620
MAP_MARGIN_PX = 24

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
                low, high = summary["ci95"]
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


# --- the routes map --------------------------------------------------------------------------


class _Projection:
    """Longitude/latitude (or x/y) to SVG pixels, the day's points fitted in the map."""

    def __init__(self, scenario: Scenario) -> None:
        points = [driver.start for driver in scenario.drivers]
        for booking in scenario.bookings:
            points += [booking.pickup, booking.dropoff]
        array = np.asarray(points, dtype=float)
        self.latlon = scenario.coords == "latlon"
        if self.latlon:  # (lat, lon) → (lon, lat), x shrunk by the latitude's cosine
            array = array[:, ::-1]
            self.x_scale = math.cos(math.radians(float(array[:, 1].mean())))
        else:
            self.x_scale = 1.0
        self.low = array.min(axis=0)
        high = array.max(axis=0)
        span = np.maximum((high - self.low) * np.array([self.x_scale, 1.0]), 1e-9)
        inner = np.array([MAP_WIDTH_PX, MAP_HEIGHT_PX], dtype=float) - 2 * MAP_MARGIN_PX
        self.pixels_per_unit = float(min(inner / span))
        self.offset = (inner - span * self.pixels_per_unit) / 2 + MAP_MARGIN_PX

    def __call__(self, point: Sequence[float]) -> tuple[float, float]:
        x, y = (point[1], point[0]) if self.latlon else (point[0], point[1])
        px = self.offset[0] + (x - self.low[0]) * self.x_scale * self.pixels_per_unit
        py = MAP_HEIGHT_PX - (self.offset[1] + (y - self.low[1]) * self.pixels_per_unit)
        return round(float(px), 1), round(float(py), 1)

    def lon_lat(self, px: float, py: float) -> tuple[float, float]:
        """The inverse: the longitude and latitude (or x and y) at a pixel."""
        x = self.low[0] + (px - self.offset[0]) / (self.x_scale * self.pixels_per_unit)
        y = self.low[1] + (MAP_HEIGHT_PX - py - self.offset[1]) / self.pixels_per_unit
        return float(x), float(y)


def clock(minute: float, start_hour: float) -> str:
    """Minutes from the start of the day as a clock time ``HH:MM``."""
    total = int(round(start_hour * 60 + minute))
    return f"{(total // 60) % 24:02d}:{total % 60:02d}"


def route_map_section(day: DayRoutes, tiles_dir: Path | None = None) -> str:
    """The SVG map of one day's routes with its driver list (click to pick out a route)."""
    scenario = day.scenario
    project = _Projection(scenario)
    colors = [_hex(color) for color in driver_colors(len(scenario.drivers))]
    start_hour = scenario.travel.start_hour if scenario.coords == "latlon" else 0.0
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {MAP_WIDTH_PX} {MAP_HEIGHT_PX}" '
        f'width="{MAP_WIDTH_PX}" height="{MAP_HEIGHT_PX}" role="img">',
        "<defs>"
        + "".join(
            f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
            f'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{color}"/></marker>'
            for k, color in enumerate(colors)
        )
        + "</defs>",
    ]
    basemap = _svg_basemap(project, tiles_dir) if project.latlon else ""
    svg.append(basemap)
    items = []
    for index, driver in enumerate(scenario.drivers):
        svg.append(_svg_driver(day, index, colors[index], project, start_hour))
        rides = plural(len(day.routes[index]), "ride")
        items.append(
            f'<li data-driver="{_text(driver.id)}"><span class="swatch" '
            f'style="background:{colors[index]}"></span>{_text(driver.id)} ({rides})</li>'
        )
    svg.append(_svg_marks(day, project, start_hour))
    svg.append(_svg_depots(scenario, project))
    svg.append("</svg>")
    m = day.metrics
    unit = "km" if scenario.coords == "latlon" else "units"
    late = int(np.count_nonzero(day.late))
    cancelled = int(np.count_nonzero(day.cancelled))
    summary = (
        f"reward {m.reward:.1f}, completion {m.completion_rate:.0%}, "
        f"{plural(late, 'late pickup')} (red rings; ×N: N at one place), "
        f"{plural(cancelled, 'cancelled booking')} (black crosses), {m.distance_km:.1f} {unit}. "
        "Solid: with a passenger (arrow: direction); dashed: empty to the next pickup; "
        "squares: depots. Hover a stop or leg for its times; click a driver to pick out its "
        "route; scroll to zoom, drag to pan, double-click to reset."
    )
    attribution = f"<br>{ATTRIBUTION}" if basemap else ""
    return (
        f'<p class="note">{_text(summary)}{attribution}</p><div class="map">{"".join(svg)}'
        f"<ul>{''.join(items)}</ul></div>"
    )


def _hex(color: Any) -> str:
    from matplotlib.colors import to_hex

    return to_hex(color)


def _svg_basemap(project: _Projection, tiles_dir: Path | None) -> str:
    """The tiles of ``tiles_dir`` covering the map as embedded images, lightened."""
    if tiles_dir is None:
        return ""
    west, north = project.lon_lat(0, 0)
    east, south = project.lon_lat(MAP_WIDTH_PX, MAP_HEIGHT_PX)
    images = []
    for tile in covering_tiles(tiles_dir, west, south, east, north):
        x0, y0 = project((tile.north, tile.west))
        x1, y1 = project((tile.south, tile.east))
        kind = "jpeg" if tile.path.suffix.lower() in (".jpg", ".jpeg") else "png"
        data = base64.b64encode(tile.path.read_bytes()).decode("ascii")
        images.append(
            f'<image x="{x0}" y="{y0}" width="{round(x1 - x0, 1)}" height="{round(y1 - y0, 1)}" '
            f'preserveAspectRatio="none" href="data:image/{kind};base64,{data}"/>'
        )
    if not images:
        return ""
    return f'<g opacity="0.45">{"".join(images)}</g>'


def _svg_driver(
    day: DayRoutes, index: int, color: str, project: _Projection, start_hour: float
) -> str:
    scenario = day.scenario
    driver = scenario.drivers[index]
    points = [project(driver.start)]
    parts = [f'<g class="driver" data-driver="{_text(driver.id)}">']
    previous = f"{driver.id}'s start"
    for booking_index in day.routes[index]:
        booking = scenario.bookings[booking_index]
        pickup, dropoff = project(booking.pickup), project(booking.dropoff)
        picked = day.pickup_min[booking_index]
        late_by = picked - booking.requested_min
        when = (
            f"picked up {clock(picked, start_hour)} "
            f"(requested {clock(booking.requested_min, start_hour)}"
            + (f", {late_by:.0f} min late" if day.late[booking_index] else "")
            + ")"
        )
        parts.append(
            _leg(
                points[-1],
                pickup,
                color,
                index,
                loaded=False,
                title=f"{driver.id}: {previous} → pickup of {booking.id}, empty",
            )
        )
        parts.append(
            _leg(
                pickup,
                dropoff,
                color,
                index,
                loaded=True,
                title=f"{driver.id} carries {booking.id}: {when}",
            )
        )
        parts.append(
            f'<circle cx="{pickup[0]}" cy="{pickup[1]}" r="3.2" fill="{color}">'
            f"<title>{_text(f'{booking.id} pickup by {driver.id}: {when}')}</title></circle>"
            f'<circle cx="{dropoff[0]}" cy="{dropoff[1]}" r="2.6" fill="white" '
            f'stroke="{color}" stroke-width="1.2"><title>'
            f"{_text(f'{booking.id} drop-off by {driver.id}')}</title></circle>"
        )
        points += [pickup, dropoff]
        previous = f"drop-off of {booking.id}"
    parts.append("</g>")
    return "".join(parts)


def _leg(
    start: tuple[float, float],
    end: tuple[float, float],
    color: str,
    index: int,
    loaded: bool,
    title: str,
) -> str:
    if start == end:
        return ""
    style = (
        f'stroke-width="2" marker-end="url(#arrow-{index})"'
        if loaded
        else 'stroke-width="1.1" stroke-dasharray="4 3" opacity="0.6"'
    )
    return (
        f'<line class="leg" x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" '
        f'stroke="{color}" {style}><title>{_text(title)}</title></line>'
    )


def _svg_marks(day: DayRoutes, project: _Projection, start_hour: float) -> str:
    """Late pickups as red rings (one per place, ×N beside a ring for N there) and cancelled
    bookings as black crosses, each with the bookings it stands for on hover."""
    scenario = day.scenario
    parts = []
    late = [int(b) for b in np.flatnonzero(day.late)]
    by_place: dict[tuple[float, float], list[int]] = {}
    for booking in late:
        by_place.setdefault(project(scenario.bookings[booking].pickup), []).append(booking)
    for (x, y), bookings in by_place.items():
        names = "; ".join(
            f"{scenario.bookings[b].id} picked up {clock(day.pickup_min[b], start_hour)}, "
            f"requested {clock(scenario.bookings[b].requested_min, start_hour)}"
            for b in bookings
        )
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="7" fill="none" stroke="red" stroke-width="2">'
            f"<title>{_text(f'late pickup: {names}')}</title></circle>"
        )
        if len(bookings) > 1:
            parts.append(
                f'<text x="{x + 8}" y="{y + 12}" font-size="11" fill="red" '
                f'font-weight="bold">×{len(bookings)}</text>'
            )
    for booking in np.flatnonzero(day.cancelled):
        x, y = project(scenario.bookings[booking].pickup)
        name = scenario.bookings[booking].id
        parts.append(
            f'<path d="M{x - 4},{y - 4} L{x + 4},{y + 4} M{x - 4},{y + 4} L{x + 4},{y - 4}" '
            f'stroke="black" stroke-width="2"><title>{_text(f"{name} cancelled")}</title></path>'
        )
    return "".join(parts)


def _svg_depots(scenario: Scenario, project: _Projection) -> str:
    parts = []
    for index, (place, ids) in enumerate(depots(scenario)):
        x, y = project(place)
        name = depot_name(index)
        title = f"depot {name}: {', '.join(ids)}"
        parts.append(
            f'<g><rect x="{x - 6}" y="{y - 6}" width="12" height="12" fill="white" '
            f'stroke="black" stroke-width="2"/><text x="{x + 9}" y="{y - 7}" font-size="12" '
            f'font-weight="bold">{name}</text><title>{_text(title)}</title></g>'
        )
    return "".join(parts)
