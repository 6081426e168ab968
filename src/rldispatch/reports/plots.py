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


def plot_comparison(report: Mapping[str, Any], path: str | Path) -> Path:
    """One panel per metric: each policy's mean with its 95% CI; and the paired reward
    differences with their CIs."""
    policies = list(report["policies"])
    figure = Figure(figsize=(14, 7))
    axes = figure.subplots(2, 3).ravel()
    colors = [f"C{k % 10}" for k in range(len(policies))]
    positions = np.arange(len(policies))
    for axis, (metric, label, scale) in zip(axes, COMPARISON_METRICS, strict=False):
        means = np.array([report["policies"][p][metric]["mean"] for p in policies]) * scale
        bounds = np.array([report["policies"][p][metric]["ci95"] for p in policies]) * scale
        errors = np.abs(np.stack([means - bounds[:, 0], bounds[:, 1] - means]))
        axis.bar(positions, means, yerr=errors, color=colors, capsize=4)
        axis.set_xticks(positions, policies, rotation=20)
        axis.set_title(label)
        axis.grid(axis="y", alpha=0.3)
        if metric == "reward":
            low = float(np.min(bounds[:, 0]))
            axis.set_ylim(bottom=min(0.0, low) if low < 0 else low * 0.8)
    paired = report.get("paired", {})
    axis = axes[len(COMPARISON_METRICS)]
    if paired:
        names = list(paired)
        means = np.array([paired[n]["reward_diff_mean"] for n in names])
        bounds = np.array([paired[n]["ci95"] for n in names])
        errors = np.abs(np.stack([means - bounds[:, 0], bounds[:, 1] - means]))
        rows = np.arange(len(names))
        axis.barh(
            rows, means, xerr=errors, color=["C2" if b[0] > 0 else "C3" for b in bounds], capsize=4
        )
        axis.axvline(0.0, color="k", linewidth=0.8)
        axis.set_yticks(rows, [n.replace("_vs_", " − ") for n in names])
        axis.set_title("paired reward difference (95% CI)")
        axis.grid(axis="x", alpha=0.3)
    else:
        axis.set_axis_off()
    figure.suptitle(
        f"{report['scenario']}: {report['episodes']} days, mean and 95% confidence interval"
    )
    figure.tight_layout()
    return save_figure(figure, path)


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
    routes = sim.served_routes()
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
