"""PNG plots: training curves, the comparison chart of a report, one day's routes.

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot, no display needed) and
written atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_bytes
from rldispatch.policies.base import Policy
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import CANCELLED, SERVED
from rldispatch.training.evaluation import run_day

COMPARISON_METRICS = (
    ("reward", "reward per day", 1.0),
    ("completion_rate", "completion (%)", 100.0),
    ("late_pickup_rate", "late pickups (%)", 100.0),
    ("distance_km", "km driven", 1.0),
    ("load_gap", "load gap (rides)", 1.0),
)
METRIC_RANGES = {
    "completion_rate": (0.0, 1.0),
    "late_pickup_rate": (0.0, 1.0),
    "distance_km": (0.0, np.inf),
    "load_gap": (0.0, np.inf),
}
"""The values a metric can take: its confidence interval is drawn within them."""
QUALITATIVE_COLORS = (
    "#4477AA",
    "#EE6677",
    "#228833",
    "#CCBB44",
    "#66CCEE",
    "#AA3377",
    "#BBBBBB",
    "#000000",
)
"""Paul Tol's 'bright' qualitative scheme (colour-blind safe), then black."""
PAIRED_COLORS = {
    "better": ("#228833", "first better (CI above 0)"),
    "worse": ("#EE6677", "first worse (CI below 0)"),
    "unsure": ("#BBBBBB", "CI includes 0"),
    "no_ci": ("#BBBBBB", "no CI (fewer than 5 days)"),
}
TENSORBOARD_TAGS = {
    "reward": "charts/episodic_return",
    "epsilon": "charts/epsilon",
    "td_loss": "losses/td_loss",
    "q_mean": "losses/q_values",
    "eval_reward": "eval/reward",
}


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


# --- training curves -------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    steps: np.ndarray
    values: np.ndarray


def load_training_curves(source: str | Path) -> dict[str, Curve]:
    """Curves keyed ``reward``, ``epsilon``, ``td_loss``, ``q_mean``, ``eval_reward`` (x: env
    steps) from a run folder, its ``training_metrics.json`` or a TensorBoard log folder."""
    source = Path(source)
    if source.is_dir() and (source / "training_metrics.json").exists():
        source = source / "training_metrics.json"
    if source.is_file():
        return _curves_from_metrics(json.loads(source.read_text(encoding="utf-8")))
    if source.is_dir():
        tensorboard = source / "tensorboard" if (source / "tensorboard").is_dir() else source
        return _curves_from_tensorboard(tensorboard)
    raise FileNotFoundError(f"{source}: no training_metrics.json or TensorBoard logs there")


def _curves_from_metrics(document: Mapping[str, Any]) -> dict[str, Curve]:
    curves: dict[str, Curve] = {}
    # A flat DQN run lists "episodes" (x: total_steps); a pairwise run "days" (x: steps).
    episodes = document.get("episodes") or document.get("days") or []
    for name in ("reward", "epsilon", "td_loss", "q_mean"):
        points = [(_steps(e), e[name]) for e in episodes if e.get(name) is not None]
        curves[name] = _curve(points)
    evaluations = document.get("evaluations", [])
    curves["eval_reward"] = _curve([(_steps(e), e["reward"]) for e in evaluations])
    return curves


def _steps(record: Mapping[str, Any]) -> float:
    return record["total_steps"] if "total_steps" in record else record["steps"]


def _curves_from_tensorboard(log_dir: Path) -> dict[str, Curve]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    available = set(accumulator.Tags().get("scalars", []))
    if not available:
        raise FileNotFoundError(f"{log_dir}: no TensorBoard scalars there")
    curves = {}
    for name, tag in TENSORBOARD_TAGS.items():
        events = accumulator.Scalars(tag) if tag in available else []
        curves[name] = _curve([(event.step, event.value) for event in events])
    return curves


def _curve(points: Sequence[tuple[float, float]]) -> Curve:
    if not points:
        return Curve(np.empty(0), np.empty(0))
    steps, values = zip(*sorted(points), strict=True)
    return Curve(np.asarray(steps, dtype=float), np.asarray(values, dtype=float))


def _thousands(value: float, _position: int) -> str:
    return f"{value / 1000:.0f}k" if abs(value) >= 1000 else f"{value:.0f}"


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    if values.size == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (cumulative[1:] - cumulative[np.arange(values.size) + 1 - counts]) / counts


def plot_training_curves(
    curves: Mapping[str, Curve], path: str | Path, title: str = "training"
) -> Path:
    """Episode reward (and its moving average, and the evaluation reward), TD loss, epsilon
    and mean Q-value against env steps."""
    figure = Figure(figsize=(11, 7))
    axes = figure.subplots(2, 2).ravel()
    reward = curves["reward"]
    axes[0].plot(reward.steps, reward.values, color="0.75", linewidth=0.6, label="episode")
    axes[0].plot(
        reward.steps, moving_average(reward.values, 50), color="C0", label="moving mean (50)"
    )
    evaluation = curves.get("eval_reward")
    if evaluation is not None and evaluation.steps.size:
        axes[0].plot(evaluation.steps, evaluation.values, "o-", color="C3", label="evaluation")
    axes[0].set_title("reward per day")
    axes[0].legend(loc="lower right", fontsize=8)
    for axis, name, label in (
        (axes[1], "td_loss", "TD loss (Huber)"),
        (axes[2], "epsilon", "epsilon"),
        (axes[3], "q_mean", "mean Q(s, a) of the batch"),
    ):
        curve = curves[name]
        axis.plot(curve.steps, curve.values, color="0.6", linewidth=0.6)
        if name != "epsilon" and curve.values.size:
            axis.plot(curve.steps, moving_average(curve.values, 50), color="C0")
        axis.set_title(label)
    for axis in axes:
        axis.set_xlabel("env steps")
        axis.xaxis.set_major_formatter(FuncFormatter(_thousands))
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


# --- comparison chart ------------------------------------------------------------------------


def _interval_errors(
    means: np.ndarray, bounds: np.ndarray, value_range: tuple[float, float]
) -> np.ndarray | None:
    """Error bar lengths below and above each mean, the interval clipped to ``value_range``
    (a rate's CI never reaches below 0% or above 100%); None when there is no interval."""
    if np.isnan(bounds).all():
        return None
    clipped = np.clip(bounds, *value_range)
    return np.nan_to_num(np.abs(np.stack([means - clipped[:, 0], clipped[:, 1] - means])))


def plot_comparison(report: Mapping[str, Any], path: str | Path) -> Path:
    """One panel per metric: each policy's mean (bars from 0) with its 95% CI clipped to the
    metric's range, one colour per policy with a legend; and the paired reward differences,
    coloured by what their CI says. Below five distinct days only the means are drawn."""
    from matplotlib.patches import Patch

    from rldispatch.reports.report import MIN_DAYS_FOR_CI, plural

    policies = list(report["policies"])
    figure = Figure(figsize=(14, 7.5))
    axes = figure.subplots(2, 3).ravel()
    colors = [QUALITATIVE_COLORS[k % len(QUALITATIVE_COLORS)] for k in range(len(policies))]
    positions = np.arange(len(policies))
    for axis, (metric, label, scale) in zip(axes, COMPARISON_METRICS, strict=False):
        means = np.array([report["policies"][p][metric]["mean"] for p in policies]) * scale
        bounds = np.array(
            [report["policies"][p][metric]["ci95"] or [np.nan, np.nan] for p in policies],
            dtype=float,
        )
        value_range = METRIC_RANGES.get(metric, (-np.inf, np.inf))
        errors = _interval_errors(means, bounds * scale, tuple(v * scale for v in value_range))
        axis.bar(positions, means, yerr=errors, color=colors, capsize=4, edgecolor="0.2")
        axis.axhline(0.0, color="k", linewidth=0.8)
        axis.set_xticks(positions, policies, rotation=20)
        axis.set_title(label)
        axis.grid(axis="y", alpha=0.3)
        top = float(np.nanmax(np.append(means + (errors[1] if errors is not None else 0), 0)))
        bottom = float(np.nanmin(np.append(means - (errors[0] if errors is not None else 0), 0)))
        if metric in ("completion_rate", "late_pickup_rate"):
            top = max(top, 0.0) if metric == "late_pickup_rate" else 100.0
        axis.set_ylim(bottom * 1.08, top * 1.08 if top > 0 else 1.0)
    paired = report.get("paired", {})
    axis = axes[len(COMPARISON_METRICS)]
    paired_legend = []
    if paired:
        names = list(paired)
        means = np.array([paired[n]["reward_diff_mean"] for n in names])
        bounds = np.array([paired[n]["ci95"] or [np.nan, np.nan] for n in names], dtype=float)
        errors = _interval_errors(means, bounds, (-np.inf, np.inf))
        verdicts = [_paired_verdict(low, high) for low, high in bounds]
        rows = np.arange(len(names))
        axis.barh(
            rows,
            means,
            xerr=errors,
            color=[PAIRED_COLORS[v][0] for v in verdicts],
            capsize=4,
            edgecolor="0.2",
        )
        axis.axvline(0.0, color="k", linewidth=0.8)
        axis.set_yticks(rows, [n.replace("_vs_", " − ") for n in names])
        axis.set_title("paired reward difference" + (" (95% CI)" if errors is not None else ""))
        axis.grid(axis="x", alpha=0.3)
        paired_legend = [
            Patch(facecolor=PAIRED_COLORS[v][0], edgecolor="0.2", label=PAIRED_COLORS[v][1])
            for v in dict.fromkeys(verdicts)
        ]
        axis.legend(handles=paired_legend, loc="best", fontsize=8)
    else:
        axis.set_axis_off()
    figure.legend(
        handles=[
            Patch(facecolor=color, edgecolor="0.2", label=name)
            for name, color in zip(policies, colors, strict=True)
        ],
        loc="lower center",
        ncol=min(len(policies), 8),
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    days = int(report.get("days", report["episodes"]))
    shown = (
        "mean and 95% confidence interval"
        if days >= MIN_DAYS_FOR_CI
        else f"means only (confidence intervals need at least {MIN_DAYS_FOR_CI} days)"
    )
    figure.suptitle(f"{report['scenario']}: {plural(days, 'distinct day')}, {shown}")
    figure.tight_layout(rect=(0.0, 0.05, 1.0, 1.0))
    return save_figure(figure, path)


def _paired_verdict(low: float, high: float) -> str:
    if np.isnan(low):
        return "no_ci"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "unsure"


# --- a day's routes --------------------------------------------------------------------------


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
    routes = []
    for driver in range(sim.n_drivers):
        mine = np.flatnonzero(served & (sim.assigned_driver == driver))
        routes.append(mine[np.argsort(sim.pickup_min[mine])].tolist())
    late = served & (sim.pickup_min > sim.requested_min + LATE_AFTER_REQUESTED_MIN)
    return DayRoutes(
        scenario, policy.name, routes, sim.pickup_min.copy(), late, sim.status == CANCELLED, metrics
    )


def _xy(point: Sequence[float], coords: str) -> tuple[float, float]:
    """Plot coordinates: (lon, lat) for latitude/longitude, else (x, y)."""
    return (point[1], point[0]) if coords == "latlon" else (point[0], point[1])


def plot_routes(day: DayRoutes, path: str | Path) -> Path:
    """Each driver's route in its own colour (start, then pickup → drop-off legs), late
    pickups marked with a red cross, cancelled bookings as grey triangles."""
    scenario = day.scenario
    coords = scenario.coords
    figure = Figure(figsize=(10, 9))
    axis = figure.subplots()
    colors = [f"C{k % 10}" for k in range(len(scenario.drivers))]
    for driver, (route, color) in enumerate(zip(day.routes, colors, strict=True)):
        points = [_xy(scenario.drivers[driver].start, coords)]
        for booking in route:
            points += [
                _xy(scenario.bookings[booking].pickup, coords),
                _xy(scenario.bookings[booking].dropoff, coords),
            ]
        xs, ys = zip(*points, strict=True)
        axis.plot(
            xs,
            ys,
            "-",
            color=color,
            linewidth=0.9,
            alpha=0.75,
            label=f"{scenario.drivers[driver].id} ({len(route)} rides)",
        )
        axis.plot(xs[0], ys[0], "s", color=color, markersize=8, markeredgecolor="k")
        axis.plot(xs[1::2], ys[1::2], "o", color=color, markersize=3)
    axis.plot([], [], "s", color="w", markeredgecolor="k", label="driver start")
    late = [_xy(scenario.bookings[b].pickup, coords) for b in np.flatnonzero(day.late)]
    if late:
        axis.scatter(
            *zip(*late, strict=True),
            marker="x",
            color="red",
            s=40,
            zorder=5,
            label=f"late pickup ({len(late)})",
        )
    cancelled = [_xy(scenario.bookings[b].pickup, coords) for b in np.flatnonzero(day.cancelled)]
    if cancelled:
        axis.scatter(
            *zip(*cancelled, strict=True),
            marker="^",
            color="0.5",
            s=30,
            zorder=4,
            label=f"cancelled ({len(cancelled)})",
        )
    axis.set_xlabel("longitude" if coords == "latlon" else "x")
    axis.set_ylabel("latitude" if coords == "latlon" else "y")
    if coords == "latlon":
        mean_lat = np.mean([b.pickup[0] for b in scenario.bookings])
        axis.set_aspect(1.0 / np.cos(np.radians(mean_lat)))
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    m = day.metrics
    axis.set_title(
        f"{scenario.name}, policy {day.policy}: reward {m.reward:.0f}, "
        f"completion {m.completion_rate:.0%}, late {m.late_pickup_rate:.0%}, "
        f"{m.distance_km:.0f} km"
    )
    figure.tight_layout()
    return save_figure(figure, path)
