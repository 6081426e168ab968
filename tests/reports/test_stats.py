"""Means, confidence intervals and paired differences, checked against SciPy on known data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rldispatch.reports.stats import mean_ci, paired_difference


def test_mean_ci_of_one_to_five_by_hand():
    # mean 3, sample sd sqrt(2.5), sem sqrt(0.5), t(0.975, 4) = 2.776445
    summary = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * np.sqrt(0.5)
    assert summary["mean"] == pytest.approx(3.0)
    assert summary["ci95"] == pytest.approx([3.0 - half, 3.0 + half], rel=1e-12)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_mean_ci_matches_scipy_t_interval(confidence):
    values = np.random.default_rng(3).normal(10.0, 4.0, size=17)
    expected = stats.t.interval(
        confidence, values.size - 1, loc=values.mean(), scale=stats.sem(values)
    )
    summary = mean_ci(values, confidence)
    assert summary["mean"] == pytest.approx(values.mean())
    assert summary["ci95"] == pytest.approx(list(expected), rel=1e-12)


def test_paired_difference_matches_scipy_ttest_rel():
    rng = np.random.default_rng(5)
    b = rng.normal(100.0, 20.0, size=12)
    a = b + rng.normal(3.0, 5.0, size=12)
    result = paired_difference(a, b)
    test = stats.ttest_rel(a, b)
    interval = test.confidence_interval(0.95)
    assert result["reward_diff_mean"] == pytest.approx(np.mean(a - b))
    assert result["p_value"] == pytest.approx(test.pvalue, rel=1e-10)
    assert result["ci95"] == pytest.approx([interval.low, interval.high], rel=1e-10)


def test_paired_difference_of_a_known_small_sample():
    # differences 1, 2, 3, 4, 5: t = 3 / sqrt(0.5) = 4.2426 on 4 df, two-sided p = 0.013236
    result = paired_difference([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
    assert result["reward_diff_mean"] == pytest.approx(3.0)
    assert result["p_value"] == pytest.approx(0.0132356, abs=1e-6)


def test_identical_values_have_a_zero_width_interval():
    assert mean_ci([4.0, 4.0, 4.0])["ci95"] == [4.0, 4.0]
    assert paired_difference([1.0, 2.0], [1.0, 2.0])["p_value"] == 1.0


def test_empty_or_unequal_series_are_refused():
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])
