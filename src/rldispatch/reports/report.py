"""The report JSON of DESIGN.md and its printed table.

A report rests on distinct days: a scenario file is one day, a preset seed is one day, and the
repeats of a stochastic policy on one day are averaged into that day. Below
:data:`MIN_DAYS_FOR_CI` distinct days no confidence interval or p-value is given (the JSON holds
``null`` and ``statistics.reason`` says why): a handful of days says too little about the
next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.sim.metrics import METRIC_NAMES, DayMetrics
from rldispatch.text import plural

__all__ = [
    "HIGHER_IS_BETTER",
    "MIN_DAYS_FOR_CI",
    "better_way",
    "build_report",
    "day_summary",
    "decision_time_summary",
    "format_table",
    "hindsight_beaten",
    "plural",
]
MIN_DAYS_FOR_CI = 5
TABLE_COLUMNS = (
    ("reward", "reward", "{:.1f}"),
    ("completion_rate", "completion", "{:.1%}"),
    ("late_pickup_rate", "late", "{:.1%}"),
    ("cancelled", "cancelled", "{:.1f}"),
    ("distance_km", "km", "{:.0f}"),
    ("empty_km", "empty km", "{:.0f}"),
    ("pickup_delay_p95_min", "delay p95", "{:.1f}"),
    ("load_gap", "load gap", "{:.1f}"),
    ("occupancy", "occupancy", "{:.2f}"),
    ("shared_ride_share", "shared", "{:.0%}"),
)

HIGHER_IS_BETTER = {
    "reward": True,
    "completion_rate": True,
    "late_pickup_rate": False,
    "cancelled": False,
    "distance_km": False,
    "empty_km": False,
    "pickup_delay_mean_min": False,
    "pickup_delay_p95_min": False,
    "load_gap": False,
}
"""Which way each day figure is better (the number of decisions is neither)."""


def better_way(metric: str) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``""`` for a figure with no better way."""
    if metric not in HIGHER_IS_BETTER:
        return ""
    return "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"


def too_few_days_reason(days: int) -> str | None:
    """Why no confidence interval or p-value is given for ``days`` distinct days, or None."""
    if days >= MIN_DAYS_FOR_CI:
        return None
    return f"only {plural(days, 'distinct day')}; at least {MIN_DAYS_FOR_CI} are needed"


def day_summary(values: Sequence[float], days: int | None = None) -> dict[str, Any]:
    """Mean of one figure per day, with its 95% CI from :data:`MIN_DAYS_FOR_CI` distinct days
    on (``ci95`` is None below that); ``days`` is the distinct count when not one per value."""
    summary = mean_ci(values)
    if too_few_days_reason(len(values) if days is None else days):
        summary["ci95"] = None
    return summary


def paired_summary(
    a: Sequence[float], b: Sequence[float], days: int | None = None
) -> dict[str, Any]:
    """``a - b`` on the same days; ``ci95`` and ``p_value`` are None below the day minimum."""
    pair = paired_difference(a, b)
    reason = too_few_days_reason(len(a) if days is None else days)
    if reason:
        pair.update(ci95=None, p_value=None, reason=reason)
    return pair


def build_report(
    scenario: str,
    seeds: Sequence[int | str],
    results: Mapping[str, Sequence[DayMetrics]],
    pairs: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise each policy's days (one :class:`DayMetrics` per distinct day, labelled by
    ``seeds``); ``pairs`` ``(a, b)`` add the paired reward difference."""
    episodes = {len(days) for days in results.values()}
    if len(episodes) > 1:
        raise ValueError("build_report: every policy must be run on the same days")
    n_played = episodes.pop() if episodes else 0
    n_days = len(set(seeds)) if seeds else n_played
    reason = too_few_days_reason(n_days)
    report: dict[str, Any] = {
        "scenario": scenario,
        "episodes": n_played,
        "days": n_days,
        "seeds": list(seeds),
        "statistics": {
            "confidence": 0.95,
            "min_days": MIN_DAYS_FOR_CI,
            "intervals": reason is None,
            "reason": reason,
        },
        "policies": {
            name: {
                metric: day_summary([getattr(day, metric) for day in days], n_days)
                for metric in METRIC_NAMES
            }
            for name, days in results.items()
        },
        "paired": {},
    }
    for a, b in pairs:
        report["paired"][f"{a}_vs_{b}"] = paired_summary(
            [day.reward for day in results[a]], [day.reward for day in results[b]], n_days
        )
    timing = decision_time_summary(results)
    if timing:
        report["decision_time_ms"] = timing
    if extra:
        report.update(extra)
    return report


def _cell(summary: Mapping[str, Any], fmt: str) -> str:
    mean = fmt.format(summary["mean"])
    if summary.get("ci95") is None:
        return mean
    low, high = summary["ci95"]
    return f"{mean} ±{fmt.format((high - low) / 2.0).lstrip('-')}"


def _days_lines(report: Mapping[str, Any]) -> list[str]:
    days = int(report.get("days", report["episodes"]))
    intervals = report.get("statistics", {}).get("intervals", days >= MIN_DAYS_FOR_CI)
    shown = "mean ± half-width of the 95% CI" if intervals else "mean only"
    lines = [f"{report['scenario']}: {plural(days, 'distinct day')}, {shown}"]
    if not intervals:
        lines.append(f"no confidence interval or p-value: {too_few_days_reason(days)}")
    if report.get("held_out_days") is not None:
        held_out = report["held_out_days"]
        of = f" of the folder's {report['folder_days']}" if report.get("folder_days") else ""
        lines.append(
            f"held out (the latest dates{of}, never trained on): {', '.join(map(str, held_out))}"
        )
    if report.get("days_available") is not None:
        lines.append(
            f"--episodes {report['episodes_cap']} played the first "
            f"{plural(report['episodes_cap'], 'day')} of {report['days_available']}"
        )
    repeats = report.get("repeats") or {}
    if repeats.get("count", 1) > 1 and repeats.get("policies"):
        lines.append(
            f"{', '.join(repeats['policies'])}: mean of {repeats['count']} runs of each day "
            "(stochastic); the other policies play each day once"
        )
    elif repeats.get("count", 1) > 1:
        lines.append(
            f"--repeats {repeats['count']}: no stochastic policy here; each day is played once"
        )
    uncertainty = report.get("uncertainty") or {}
    settings = [
        f"{option} {uncertainty[key]:g}"
        for key, option in UNCERTAINTY_OPTIONS
        if uncertainty.get(key)
    ]
    if settings:
        lines.append(
            f"an uncertain day ({', '.join(settings)}, drawn from seed "
            f"{uncertainty.get('seed', 0)}, the same for every policy)"
        )
    return lines


UNCERTAINTY_OPTIONS = (
    ("travel_cv", "--travel-noise"),
    ("no_show_rate", "--no-show-rate"),
    ("service_delay_cv", "--service-delay"),
)
"""The report's uncertainty settings and the options that set them."""


def decision_time_summary(results: Mapping[str, Sequence[DayMetrics]]) -> dict[str, Any]:
    """Mean and 99th percentile of each policy's decision time in ms, over all its decisions
    (a wall-clock measurement, the one part of a report that differs between two runs).
    Policies whose days carry no timing (``decision_ms``) are left out."""
    summary = {}
    for name, days in results.items():
        times = [t for day in days for t in getattr(day, "decision_ms", ())]
        if times:
            values = np.asarray(times)
            summary[name] = {
                "mean": float(values.mean()),
                "p99": float(np.percentile(values, 99)),
                "decisions": int(values.size),
            }
    return summary


def hindsight_beaten(
    online: Mapping[str, Sequence[DayMetrics]], hindsight: Sequence[DayMetrics]
) -> dict[str, Any]:
    """How often an online policy's reward was above the hindsight plan's, and by how much:
    the days on which any policy did, the largest margin, and the same per policy."""
    best = np.asarray([day.reward for day in hindsight])
    per_policy = {}
    any_day = np.zeros(best.size, dtype=bool)
    largest = 0.0
    for name, days in online.items():
        margin = np.asarray([day.reward for day in days]) - best
        beaten = margin > 0
        any_day |= beaten
        largest = max(largest, float(margin.max(initial=0.0)))
        per_policy[name] = {
            "days": int(beaten.sum()),
            "max_margin": float(margin.max(initial=0.0)) if beaten.any() else 0.0,
        }
    return {
        "days": int(any_day.sum()),
        "of_days": int(best.size),
        "max_margin": largest,
        "by_policy": per_policy,
    }


def format_table(report: Mapping[str, Any]) -> str:
    """The report as a plain-text table: mean (and 95% CI) per metric and policy."""
    header = ["policy"] + [label for _, label, _ in TABLE_COLUMNS]
    rows = [header]
    for name, metrics in report["policies"].items():
        rows.append([name] + [_cell(metrics[metric], fmt) for metric, _, fmt in TABLE_COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = _days_lines(report)
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    for name, pair in report.get("paired", {}).items():
        text = f"{name}: reward difference {pair['reward_diff_mean']:+.1f}"
        if pair.get("ci95") is not None:
            low, high = pair["ci95"]
            text += f" (95% CI {low:+.1f} to {high:+.1f}, p = {pair['p_value']:.3g})"
        lines.append(text)
    for name, timing in report.get("decision_time_ms", {}).items():
        lines.append(
            f"{name}: decision time mean {timing['mean']:.2f} ms, p99 {timing['p99']:.2f} ms"
        )
    beaten = report.get("hindsight_beaten")
    if beaten is not None:
        lines.append(
            f"hindsight beaten by an online policy on {beaten['days']} of "
            f"{beaten['of_days']} days (largest margin {beaten['max_margin']:.1f})"
        )
    for name, regret in report.get("regret", {}).items():
        text = f"{name}: regret to hindsight {regret['mean']:.1f} reward per day"
        if regret.get("ci95") is not None:
            low, high = regret["ci95"]
            text += f" (95% CI {low:.1f} to {high:.1f})"
        lines.append(text)
    return "\n".join(lines)
