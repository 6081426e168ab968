"""What the pairwise bench scripts print of each variant played on the same held-out days: its
summary (reward with its 95% CI, completion and late rates) and its paired difference to
another variant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rldispatch.reports.stats import mean_ci, paired_difference


def variant_summary(metrics: Sequence[Any]) -> dict[str, Any]:
    """Reward (mean and 95% CI), completion and late-pickup rate of a variant's days."""
    return {
        "reward": mean_ci([m.reward for m in metrics]),
        "completion_rate": float(np.mean([m.completion_rate for m in metrics])),
        "late_pickup_rate": float(np.mean([m.late_pickup_rate for m in metrics])),
    }


def variant_line(name: str, width: int, summary: dict[str, Any]) -> str:
    """One line of :func:`variant_summary`, the name padded to ``width``."""
    return (
        f"{name:{width}s}  reward {summary['reward']['mean']:7.1f}  completion "
        f"{summary['completion_rate']:.4f}  late {summary['late_pickup_rate']:.4f}"
    )


def paired(label: str, first: Sequence[float], second: Sequence[float]) -> tuple[dict, str]:
    """The paired reward difference ``first - second`` over the same days, and its text."""
    pair = paired_difference(list(first), list(second))
    low, high = pair["ci95"]
    return pair, f"  {label} {pair['reward_diff_mean']:+6.1f} [{low:+.1f}, {high:+.1f}]"


def ci_text(pair: dict[str, Any]) -> str:
    """A paired difference as ``+x.x (95% CI +a.a to +b.b)``."""
    low, high = pair["ci95"]
    return f"{pair['reward_diff_mean']:+.1f} (95% CI {low:+.1f} to {high:+.1f})"


def compare_variants(
    results: dict[str, Sequence[Any]],
    against: Sequence[str],
    more: Callable[[str], str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Print a line per variant (:func:`variant_line`, then ``more(name)``, then its paired
    reward difference to each variant of ``against`` but itself); their summaries, each
    difference as ``this_minus_<other>``."""
    width = max(len(name) for name in results)
    summaries = {}
    for name, metrics in results.items():
        summary = variant_summary(metrics)
        line = variant_line(name, width, summary) + (more(name) if more else "")
        rewards = [m.reward for m in metrics]
        for other in against:
            if other == name or other not in results:
                continue
            others = [m.reward for m in results[other]]
            summary[f"this_minus_{other}"], text = paired(f"this - {other}", rewards, others)
            line += text
        summaries[name] = summary
        print(line, flush=True)
    return summaries
