"""One day's routes as an interactive SVG map for the report page: each driver's legs and
stops with their times on hover, late pickups ringed, cancelled bookings crossed, depots
lettered as on the PNG map, and map tiles from a local folder embedded under it."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.reports.basemap import ATTRIBUTION, covering_tiles
from rldispatch.reports.route_map import DayRoutes, depot_name, depots, driver_colors
from rldispatch.text import plural

MAP_WIDTH_PX = 900
MAP_HEIGHT_PX = 620
MAP_MARGIN_PX = 24


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


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
