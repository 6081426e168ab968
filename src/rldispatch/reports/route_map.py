"""One day's routes on a map: an overview of the fleet, and a panel per driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.reports.basemap import draw_basemap, tiles_dir_from
from rldispatch.reports.figures import save_figure
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import CANCELLED, SERVED
from rldispatch.text import plural
from rldispatch.training.evaluation import run_day


@dataclass(frozen=True)
class DayRoutes:
    """What each driver did on one day, in pickup order."""

    scenario: Scenario
    policy: str
    routes: list[list[int]]
    pickup_min: np.ndarray
    late: np.ndarray
    cancelled: np.ndarray
    metrics: DayMetrics


def record_routes(
    policy: Policy, scenario: Scenario, env_config: EnvConfig | None = None
) -> DayRoutes:
    """Play ``scenario`` with ``policy`` and keep each driver's served bookings in order."""
    env = DispatchEnv(preset=None, scenario=scenario, config=env_config)
    metrics = run_day(policy, env, scenario)
    sim = env.sim
    served = sim.status == SERVED
    routes = sim.served_routes()
    late = served & (sim.pickup_min > sim.requested_min + LATE_AFTER_REQUESTED_MIN)
    return DayRoutes(
        scenario, policy.name, routes, sim.pickup_min.copy(), late, sim.status == CANCELLED, metrics
    )


def _xy(point: Sequence[float], coords: str) -> tuple[float, float]:
    """Plot coordinates: (lon, lat) for latitude/longitude, else (x, y)."""
    return (point[1], point[0]) if coords == "latlon" else (point[0], point[1])


def driver_colors(count: int) -> list[Any]:
    """One colour per driver from qualitative palettes: ``tab10`` up to 10 drivers, ``tab20``
    up to 20, then ``tab20`` followed by ``tab20b`` (40 colours, repeated beyond)."""
    from matplotlib import colormaps

    if count <= 10:
        palette = list(colormaps["tab10"].colors)
    elif count <= 20:
        palette = list(colormaps["tab20"].colors)
    else:
        palette = list(colormaps["tab20"].colors) + list(colormaps["tab20b"].colors)
    return [palette[k % len(palette)] for k in range(count)]


def _readable(color: Any) -> tuple[float, float, float]:
    """The colour darkened when it is too light to read over light grey (the pale half of
    ``tab20``), the same hue otherwise."""
    from matplotlib.colors import to_rgb

    rgb = np.array(to_rgb(color))
    luminance = float(rgb @ np.array([0.299, 0.587, 0.114]))
    if luminance > 0.6:
        rgb = rgb * (0.6 / luminance)
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def _nice_length(span: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) close to a fifth of ``span``."""
    target = max(span / 5.0, 1e-9)
    power = 10.0 ** np.floor(np.log10(target))
    return float(min((1.0, 2.0, 5.0, 10.0), key=lambda m: abs(m * power - target)) * power)


def _scale_bar(axis: Any, coords: str, mean_lat: float) -> None:
    """A scale bar in the lower left: km for latitude/longitude, plain units for ``xy``."""
    x_low, x_high = axis.get_xlim()
    y_low, y_high = axis.get_ylim()
    per_unit = 111.32 * np.cos(np.radians(mean_lat)) if coords == "latlon" else 1.0
    length = _nice_length((x_high - x_low) * per_unit)
    x0 = x_low + 0.04 * (x_high - x_low)
    y0 = y_low + 0.04 * (y_high - y_low)
    axis.plot([x0, x0 + length / per_unit], [y0, y0], color="k", linewidth=3, zorder=7)
    unit = "km" if coords == "latlon" else "units"
    axis.text(
        x0 + length / per_unit / 2,
        y0 + 0.012 * (y_high - y_low),
        f"{length:g} {unit}",
        ha="center",
        va="bottom",
        fontsize=9,
        zorder=7,
    )


def depots(scenario: Scenario) -> list[tuple[tuple[float, float], list[str]]]:
    """Start locations shared by drivers, each with the drivers starting there."""
    by_place: dict[tuple[float, float], list[str]] = {}
    for driver in scenario.drivers:
        place = (round(driver.start[0], 5), round(driver.start[1], 5))
        by_place.setdefault(place, []).append(driver.id)
    return list(by_place.items())


def _draw_route(
    axis: Any,
    points: list[tuple[float, float]],
    color: Any,
    width: float,
    arrows: bool,
    empty_legs: bool = True,
) -> None:
    """Legs from the start through pickup → drop-off pairs: loaded legs solid, empty legs
    dashed (or left out), an arrow on each loaded leg's midpoint showing the direction."""
    for k in range(len(points) - 1):
        (x0, y0), (x1, y1) = points[k], points[k + 1]
        loaded = k % 2 == 1
        if not loaded and not empty_legs:
            continue
        axis.plot(
            [x0, x1],
            [y0, y1],
            "-" if loaded else "--",
            color=color,
            linewidth=width if loaded else width * 0.6,
            alpha=0.9 if loaded else 0.45,
            zorder=2,
        )
        if arrows and loaded and (x0, y0) != (x1, y1):
            mid = ((x0 + x1) / 2, (y0 + y1) / 2)
            axis.annotate(
                "",
                xy=(mid[0] + (x1 - x0) * 0.01, mid[1] + (y1 - y0) * 0.01),
                xytext=mid,
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 0, "mutation_scale": 14},
                zorder=3,
            )


def places_with_counts(
    points: Sequence[tuple[float, float]],
) -> list[tuple[tuple[float, float], int]]:
    """Distinct places among ``points`` (to about a metre) with how many points are there."""
    counts: dict[tuple[float, float], int] = {}
    for x, y in points:
        place = (round(x, 5), round(y, 5))
        counts[place] = counts.get(place, 0) + 1
    return list(counts.items())


def _mark_bookings(axis: Any, day: DayRoutes, size: float = 1.0) -> list[Any]:
    """Late pickups ringed in red (one ring per place, the count beside a ring that stands
    for several), cancelled bookings as black crosses; their legend entries."""
    from matplotlib.lines import Line2D

    scenario, coords = day.scenario, day.scenario.coords
    handles = []
    late = [_xy(scenario.bookings[b].pickup, coords) for b in np.flatnonzero(day.late)]
    if late:
        rings = places_with_counts(late)
        axis.scatter(
            *zip(*[place for place, _ in rings], strict=True),
            s=90 * size,
            facecolors="none",
            edgecolors="red",
            linewidths=1.6,
            zorder=6,
        )
        for (x, y), count in rings:
            if count > 1:
                axis.annotate(
                    f"×{count}",
                    (x, y),
                    xytext=(6, -10),
                    textcoords="offset points",
                    fontsize=8,
                    color="red",
                    fontweight="bold",
                    zorder=6,
                )
        shared = len(rings) < len(late)
        label = f"late pickup ({len(late)}" + (
            f" at {plural(len(rings), 'place')}; ×N: N there)" if shared else ")"
        )
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markerfacecolor="none",
                markeredgecolor="red",
                linestyle="",
                markersize=9,
                label=label,
            )
        )
    cancelled = [_xy(scenario.bookings[b].pickup, coords) for b in np.flatnonzero(day.cancelled)]
    if cancelled:
        axis.scatter(*zip(*cancelled, strict=True), marker="X", s=80 * size, color="k", zorder=6)
        handles.append(
            Line2D(
                [],
                [],
                marker="X",
                color="k",
                linestyle="",
                markersize=8,
                label=f"cancelled ({len(cancelled)})",
            )
        )
    return handles


def _route_points(day: DayRoutes, driver: int) -> list[tuple[float, float]]:
    scenario, coords = day.scenario, day.scenario.coords
    points = [_xy(scenario.drivers[driver].start, coords)]
    for booking in day.routes[driver]:
        points += [
            _xy(scenario.bookings[booking].pickup, coords),
            _xy(scenario.bookings[booking].dropoff, coords),
        ]
    return points


def _frame(axis: Any, scenario: Scenario) -> float:
    """Aspect and grid of a map panel; returns the mean latitude (0 for ``xy``)."""
    mean_lat = 0.0
    if scenario.coords == "latlon":
        mean_lat = float(np.mean([d.start[0] for d in scenario.drivers]))
        axis.set_aspect(1.0 / np.cos(np.radians(mean_lat)))
    else:
        axis.set_aspect("equal")
    axis.grid(alpha=0.25)
    return mean_lat


DENSE_FLEET = 12
"""Above this many drivers the overview leaves the empty legs out; the panels show them."""


def plot_routes(day: DayRoutes, path: str | Path, tiles_dir: Path | None = None) -> Path:
    """A day's routes on one map: one colour per driver (qualitative palette), loaded legs
    solid with a direction arrow, empty legs dashed (left out above :data:`DENSE_FLEET`
    drivers), each depot marked once by a letter (the legend names its drivers), late pickups
    ringed in red, cancelled bookings crossed, a scale bar; over a light basemap when
    ``tiles_dir`` (or ``RLDISPATCH_TILES_DIR``) has tiles of the day's area."""
    from matplotlib.lines import Line2D

    scenario = day.scenario
    coords = scenario.coords
    n_drivers = len(scenario.drivers)
    colors = driver_colors(n_drivers)
    dense = n_drivers > DENSE_FLEET
    figure = Figure(figsize=(13, 10))
    axis = figure.subplots()
    handles = []
    for driver in range(n_drivers):
        _draw_route(
            axis,
            _route_points(day, driver),
            colors[driver],
            1.0 if dense else 1.4,
            arrows=True,
            empty_legs=not dense,
        )
        rides = plural(len(day.routes[driver]), "ride")
        handles.append(
            Line2D(
                [],
                [],
                color=colors[driver],
                linewidth=2.5,
                label=f"{scenario.drivers[driver].id} ({rides})",
            )
        )
    mean_lat = _frame(axis, scenario)
    handles += _mark_depots(axis, scenario)
    handles += [
        Line2D(
            [],
            [],
            color="0.3",
            linewidth=1.5,
            marker=">",
            markevery=[1],
            label="with a passenger (arrow: direction)",
        ),
    ]
    if not dense:
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                linewidth=0.9,
                linestyle="--",
                label="empty, to the next pickup",
            )
        )
    handles += _mark_bookings(axis, day)
    if coords == "latlon":
        draw_basemap(axis, tiles_dir_from(tiles_dir))
    axis.set_xlabel("longitude" if coords == "latlon" else "x")
    axis.set_ylabel("latitude" if coords == "latlon" else "y")
    axis.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        ncol=2 if len(handles) > 22 else 1,
        frameon=False,
    )
    _scale_bar(axis, coords, mean_lat)
    m = day.metrics
    distance_unit = "km" if coords == "latlon" else "units"
    note = " (empty legs in the per-driver panels)" if dense else ""
    axis.set_title(
        f"{scenario.name}, policy {day.policy}, {n_drivers} drivers: reward {m.reward:.0f}, "
        f"completion {m.completion_rate:.0%}, late {m.late_pickup_rate:.0%}, "
        f"{m.distance_km:.0f} {distance_unit}{note}"
    )
    figure.tight_layout()
    return save_figure(figure, path)


def depot_name(index: int) -> str:
    """A depot's short name on the map: A, B, ..., Z, AA, AB, ..."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _mark_depots(axis: Any, scenario: Scenario, labels: bool = True) -> list[Any]:
    """Each depot a white square; with ``labels``, a short name on the map (A, B, ...) and a
    legend entry naming every driver starting there (returned)."""
    import textwrap

    from matplotlib.lines import Line2D

    handles = []
    x_centre = float(np.mean(axis.get_xlim()))
    for index, (place, ids) in enumerate(depots(scenario)):
        x, y = _xy(place, scenario.coords)
        axis.scatter(
            [x],
            [y],
            marker="s",
            s=120 if labels else 30,
            color="white",
            edgecolors="k",
            linewidths=1.8 if labels else 1.0,
            zorder=8,
        )
        if not labels:
            continue
        name = depot_name(index)
        right_half = x > x_centre  # the label goes towards the middle of the map
        axis.annotate(
            name,
            (x, y),
            xytext=(-8 if right_half else 8, 6),
            textcoords="offset points",
            ha="right" if right_half else "left",
            fontsize=9,
            fontweight="bold",
            zorder=8,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "lw": 0},
        )
        members = textwrap.fill(", ".join(ids), width=44, subsequent_indent="   ")
        handles.append(
            Line2D(
                [],
                [],
                marker="s",
                markerfacecolor="white",
                markeredgecolor="k",
                linestyle="",
                markersize=9,
                label=f"depot {name} ({plural(len(ids), 'driver')}): {members}",
            )
        )
    return handles


def plot_route_panels(day: DayRoutes, path: str | Path, columns: int = 5) -> Path:
    """A panel per driver, on the same map extent: its route (loaded legs solid with arrows,
    empty legs dashed) over the whole fleet's routes in light grey, its start, its late
    pickups ringed in red."""
    scenario = day.scenario
    n_drivers = len(scenario.drivers)
    colors = driver_colors(n_drivers)
    columns = max(1, min(columns, n_drivers))
    rows = int(np.ceil(n_drivers / columns))
    figure = Figure(figsize=(3.1 * columns, 3.0 * rows + 0.6))
    axes = np.atleast_1d(figure.subplots(rows, columns, sharex=True, sharey=True)).ravel()
    everything = [_route_points(day, driver) for driver in range(n_drivers)]
    for driver, panel in enumerate(axes):
        if driver >= n_drivers:
            panel.set_axis_off()
            continue
        for other in everything:
            xs, ys = zip(*other, strict=True)
            panel.plot(xs, ys, color="0.88", linewidth=0.5, zorder=1)
        _draw_route(panel, everything[driver], _readable(colors[driver]), 1.1, arrows=True)
        start = everything[driver][0]
        panel.scatter(*start, marker="s", s=40, color="white", edgecolors="k", zorder=8)
        mine = np.zeros(len(scenario.bookings), dtype=bool)
        mine[day.routes[driver]] = True
        late = [
            _xy(scenario.bookings[b].pickup, scenario.coords)
            for b in np.flatnonzero(day.late & mine)
        ]
        if late:
            panel.scatter(
                *zip(*late, strict=True),
                s=40,
                facecolors="none",
                edgecolors="red",
                linewidths=1.2,
                zorder=6,
            )
        _frame(panel, scenario)
        panel.set_xticks([])
        panel.set_yticks([])
        panel.set_title(
            f"{scenario.drivers[driver].id}: {plural(len(day.routes[driver]), 'ride')}, "
            f"{plural(len(late), 'late pickup')}",
            fontsize=9,
        )
    figure.suptitle(
        f"{scenario.name}, policy {day.policy}: each driver's route (others in grey; "
        "□ start, red ring: late pickup)"
    )
    figure.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.45 / figure.get_figheight()))
    return save_figure(figure, path)
