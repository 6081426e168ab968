"""Means, confidence intervals and paired differences."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict[str, object]:
    """Mean and Student-t confidence interval; a single value has a zero-width interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("mean_ci: no values")
    mean = float(data.mean())
    if data.size < 2 or float(data.std()) == 0.0:
        return {"mean": mean, "ci95": [mean, mean]}
    sem = float(data.std(ddof=1) / math.sqrt(data.size))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, data.size - 1)) * sem
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> dict[str, object]:
    """``a - b`` on the same days: mean difference, its t interval and the two-sided p-value."""
    a_values = np.asarray(a, dtype=np.float64)
    b_values = np.asarray(b, dtype=np.float64)
    if a_values.shape != b_values.shape or a_values.size == 0:
        raise ValueError("paired_difference: needs two equally long, non-empty series")
    diff = a_values - b_values
    summary = mean_ci(diff, confidence)
    if diff.size < 2 or float(diff.std()) == 0.0:
        p_value = 1.0 if float(diff.mean()) == 0.0 else 0.0
    else:
        p_value = float(stats.ttest_1samp(diff, 0.0).pvalue)
    return {"reward_diff_mean": summary["mean"], "ci95": summary["ci95"], "p_value": p_value}
