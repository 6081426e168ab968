"""PNG plots: training curves and the comparison chart of a report (a day's routes are in
:mod:`rldispatch.reports.route_map`, imported here too).

Figures are drawn on ``matplotlib.figure.Figure`` objects (no pyplot, no display needed) and
written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from rldispatch.reports.figures import QUALITATIVE_COLORS, save_figure
from rldispatch.reports.route_map import (
    DayRoutes,
    plot_route_panels,
    plot_routes,
    record_routes,
)

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
PAIRED_COLORS = {
    "better": ("#009988", "first better (CI above 0)"),
    "worse": ("#CC3311", "first worse (CI below 0)"),
    "unsure": ("#DDDDDD", "CI includes 0"),
    "no_ci": ("#DDDDDD", "no CI (fewer than 5 days)"),
}
"""Paired bars: hatched, in colours apart from the policies' so no colour means two things."""
TENSORBOARD_TAGS = {
    "reward": "charts/episodic_return",
    "epsilon": "charts/epsilon",
    "td_loss": "losses/td_loss",
    "q_mean": "losses/q_values",
    "eval_reward": "eval/reward",
}


# --- training curves -------------------------------------------------------------------------


QUICKSTART_RUN = "train"
"""The subfolder of a quickstart folder holding its training run."""


@dataclass(frozen=True)
class Curve:
    """Values against env steps; ``drivers`` is each point's fleet size when the run recorded
    it (a pairwise run trains on fleets of many sizes), else None."""

    steps: np.ndarray
    values: np.ndarray
    drivers: np.ndarray | None = None


def load_training_curves(source: str | Path) -> dict[str, Curve]:
    """Curves keyed ``reward``, ``epsilon``, ``td_loss``, ``q_mean``, ``eval_reward`` (x: env
    steps) from a run folder, its ``training_metrics.json``, a TensorBoard log folder or a
    quickstart folder (its run is in ``train/``)."""
    source = Path(source)
    quickstart_run = source / QUICKSTART_RUN
    if (
        not (source / "training_metrics.json").exists()
        and (quickstart_run / "training_metrics.json").exists()
    ):
        source = quickstart_run
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
    for name in ("reward", "epsilon", "td_loss", "q_mean", "late_pickup_rate"):
        points = [(_steps(e), e[name]) for e in episodes if e.get(name) is not None]
        curves[name] = _curve(points)
    for name in ("reward", "late_pickup_rate"):
        sized = [e for e in episodes if e.get(name) is not None and e.get("drivers") is not None]
        if sized and len(sized) == len(curves[name].steps):
            order = np.argsort([_steps(e) for e in sized], kind="stable")
            curves[name] = Curve(
                curves[name].steps,
                curves[name].values,
                np.asarray([sized[k]["drivers"] for k in order], dtype=int),
            )
    evaluations = document.get("evaluations", [])
    curves["eval_reward"] = _curve([(_steps(e), e["reward"]) for e in evaluations])
    return curves


def _steps(record: Mapping[str, Any]) -> float:
    for key in ("decision", "total_steps", "steps"):
        if key in record:
            return record[key]
    raise KeyError("decision")


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


def moving_spread(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing 25th and 75th percentiles over up to ``window`` values."""
    if values.size == 0:
        return values, values
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    low, high = np.nanpercentile(windows, [25, 75], axis=1)
    return low, high


def fleet_bands(drivers: np.ndarray, most: int = 4) -> list[tuple[int, int]]:
    """Fleet-size bands for the reward curves: each size on its own when there are at most
    ``most`` sizes, else ``most`` bands holding about as many sizes each."""
    sizes = np.unique(drivers)
    if sizes.size <= most:
        return [(int(size), int(size)) for size in sizes]
    return [(int(part[0]), int(part[-1])) for part in np.array_split(sizes, most)]


def _by_fleet_panel(axis: Any, reward: Curve, window: int, scale: float = 1.0) -> None:
    """A figure per training day: one smoothed curve with its spread per fleet-size band, or
    one for a run on one fleet shape."""
    if reward.drivers is None or np.unique(reward.drivers).size < 2:
        groups = [("moving mean", np.ones(reward.values.size, dtype=bool))]
    else:
        groups = [
            (
                f"{low}–{high} drivers" if low != high else f"{low} drivers",
                (reward.drivers >= low) & (reward.drivers <= high),
            )
            for low, high in fleet_bands(reward.drivers)
        ]
    for k, (label, mask) in enumerate(groups):
        color = QUALITATIVE_COLORS[k % len(QUALITATIVE_COLORS)]
        steps, values = reward.steps[mask], reward.values[mask] * scale
        axis.scatter(steps, values, s=6, color=color, alpha=0.35, linewidths=0)
        low, high = moving_spread(values, window)
        axis.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
        axis.plot(steps, moving_average(values, window), color=color, linewidth=1.8, label=label)
    axis.legend(
        loc="best",
        fontsize=8,
        title=f"line: mean of {window} days\nband: 25–75%",
        title_fontsize=8,
    )


def plot_training_curves(
    curves: Mapping[str, Curve], path: str | Path, title: str = "training", window: int = 50
) -> Path:
    """Training reward per day (per fleet-size band when the run trained on several fleet
    sizes: a bigger fleet earns more, so one line would mix them), the evaluation reward on the
    fixed evaluation days, TD loss, epsilon and mean Q-value, against env steps."""
    figure = Figure(figsize=(13, 8))
    axes = figure.subplots(2, 3).ravel()
    reward = curves["reward"]
    window = max(1, min(window, max(1, reward.values.size // 4)))
    _by_fleet_panel(axes[0], reward, window)
    axes[0].set_title("reward per training day")
    evaluation = curves.get("eval_reward")
    if evaluation is not None and evaluation.steps.size:
        _evaluation_panel(axes[1], evaluation)
    axes[1].set_title("evaluation reward (fixed days)")
    late = curves.get("late_pickup_rate")
    if late is not None and late.values.size:
        _by_fleet_panel(axes[2], late, window, scale=100.0)
    else:
        axes[2].text(
            0.5, 0.5, "not recorded", ha="center", va="center", transform=axes[2].transAxes
        )
    axes[2].set_title("late pickups per training day (%)")
    for axis, name, label in (
        (axes[3], "td_loss", "TD loss (Huber)"),
        (axes[4], "epsilon", "epsilon"),
        (axes[5], "q_mean", "mean Q(s, a) of the batch"),
    ):
        curve = curves[name]
        axis.plot(curve.steps, curve.values, color="0.7", linewidth=0.6)
        if name != "epsilon" and curve.values.size:
            axis.plot(
                curve.steps, moving_average(curve.values, window), color=QUALITATIVE_COLORS[0]
            )
        axis.set_title(label)
        if not curve.values.size:
            axis.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=axis.transAxes)
    for axis in axes:
        if not axis.has_data():
            axis.set_xticks([])
            axis.set_yticks([])
            continue
        axis.set_xlabel("env steps")
        axis.xaxis.set_major_formatter(FuncFormatter(_thousands))
        axis.grid(alpha=0.3)
    days = f"{reward.values.size:,} training days"
    if reward.drivers is not None and reward.values.size:
        sizes = np.unique(reward.drivers)
        days += f", fleets of {sizes.min()} to {sizes.max()} drivers"
    figure.suptitle(f"{title} ({days})")
    figure.tight_layout()
    return save_figure(figure, path)


EVALUATION_SPAN_SHARE = 0.1
"""The evaluation panel's y axis spans at least this share of the mean reward, so a wobble of
a few percent is not drawn as a fall across the whole panel."""


def _evaluation_panel(axis: Any, evaluation: Curve) -> None:
    """The evaluation rewards, the kept model (the best evaluation, the first of equals: the
    run's best model) marked with a star and its step."""
    axis.plot(evaluation.steps, evaluation.values, "o-", color=QUALITATIVE_COLORS[5])
    kept = int(np.argmax(evaluation.values))
    step, value = evaluation.steps[kept], evaluation.values[kept]
    start = " (the untrained start)" if kept == 0 and step == evaluation.steps.min() else ""
    axis.plot(
        [step],
        [value],
        marker="*",
        markersize=16,
        color="gold",
        markeredgecolor="k",
        linestyle="",
        zorder=5,
        label=f"kept model{start}: {value:,.1f} at step {_thousands(step, 0)}",
    )
    axis.legend(loc="lower right", fontsize=8)
    middle = float(np.mean(evaluation.values))
    low, high = float(evaluation.values.min()), float(evaluation.values.max())
    least = EVALUATION_SPAN_SHARE * max(abs(middle), 1.0)
    if high - low < least:
        centre = (high + low) / 2
        axis.set_ylim(centre - least / 2, centre + least / 2)


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

    from rldispatch.reports.report import MIN_DAYS_FOR_CI, better_way, plural

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
        axis.set_title(f"{label}\n({better_way(metric)})")
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
            hatch="//",
        )
        axis.axvline(0.0, color="k", linewidth=0.8)
        axis.set_yticks(rows, [n.replace("_vs_", " − ") for n in names])
        axis.set_title(
            "paired reward difference"
            + (" (95% CI)" if errors is not None else "")
            + "\n(above 0: the first policy is better)"
        )
        axis.grid(axis="x", alpha=0.3)
        paired_legend = [
            Patch(
                facecolor=PAIRED_COLORS[v][0],
                edgecolor="0.2",
                hatch="//",
                label=PAIRED_COLORS[v][1],
            )
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


__all__ = [
    "Curve",
    "DayRoutes",
    "load_training_curves",
    "moving_average",
    "plot_comparison",
    "plot_route_panels",
    "plot_routes",
    "plot_training_curves",
    "record_routes",
    "save_figure",
]
