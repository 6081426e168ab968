"""The report JSON of DESIGN.md and its printed table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.sim.metrics import METRIC_NAMES, DayMetrics

TABLE_COLUMNS = (
    ("reward", "reward", "{:.1f}"),
    ("completion_rate", "completion", "{:.1%}"),
    ("late_pickup_rate", "late", "{:.1%}"),
    ("cancelled", "cancelled", "{:.1f}"),
    ("distance_km", "km", "{:.0f}"),
    ("empty_km", "empty km", "{:.0f}"),
    ("pickup_delay_p95_min", "delay p95", "{:.1f}"),
    ("load_gap", "load gap", "{:.1f}"),
)


def build_report(
    scenario: str,
    seeds: Sequence[int | str],
    results: Mapping[str, Sequence[DayMetrics]],
    pairs: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise each policy's days; ``pairs`` ``(a, b)`` add the paired reward difference."""
    episodes = {len(days) for days in results.values()}
    if len(episodes) > 1:
        raise ValueError("build_report: every policy must be run on the same days")
    report: dict[str, Any] = {
        "scenario": scenario,
        "episodes": episodes.pop() if episodes else 0,
        "seeds": list(seeds),
        "policies": {
            name: {
                metric: mean_ci([getattr(day, metric) for day in days]) for metric in METRIC_NAMES
            }
            for name, days in results.items()
        },
        "paired": {},
    }
    for a, b in pairs:
        report["paired"][f"{a}_vs_{b}"] = paired_difference(
            [day.reward for day in results[a]], [day.reward for day in results[b]]
        )
    timing = decision_time_summary(results)
    if timing:
        report["decision_time_ms"] = timing
    if extra:
        report.update(extra)
    return report


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
    """The report as a plain-text table: mean and 95% CI per metric and policy."""
    header = ["policy"] + [label for _, label, _ in TABLE_COLUMNS]
    rows = [header]
    for name, metrics in report["policies"].items():
        row = [name]
        for metric, _, fmt in TABLE_COLUMNS:
            summary = metrics[metric]
            low, high = summary["ci95"]
            half = (high - low) / 2.0
            row.append(f"{fmt.format(summary['mean'])} ±{fmt.format(half).lstrip('-')}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"{report['scenario']}: {report['episodes']} days, mean ± half-width of the 95% CI"]
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
        low, high = pair["ci95"]
        lines.append(
            f"{name}: reward difference {pair['reward_diff_mean']:+.1f} "
            f"(95% CI {low:+.1f} to {high:+.1f}, p = {pair['p_value']:.3g})"
        )
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
        low, high = regret["ci95"]
        lines.append(
            f"{name}: regret to hindsight {regret['mean']:.1f} reward per day "
            f"(95% CI {low:.1f} to {high:.1f})"
        )
    return "\n".join(lines)
