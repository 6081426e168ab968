"""The report: distinct days, and no confidence interval or p-value below five of them."""

from __future__ import annotations

import pytest

from rldispatch.reports.report import (
    MIN_DAYS_FOR_CI,
    build_report,
    format_table,
    plural,
)
from rldispatch.sim.metrics import DayMetrics


def day(reward: float) -> DayMetrics:
    return DayMetrics(
        reward=reward,
        completion_rate=0.9,
        late_pickup_rate=0.1,
        cancelled=1,
        distance_km=100.0,
        empty_km=30.0,
        pickup_delay_mean_min=2.0,
        pickup_delay_p95_min=6.0,
        load_gap=2,
        decisions=50,
        bookings=40,
        served=36,
    )


def report_of(n_days: int) -> dict:
    labels = [f"2025-10-{k + 1:02d}" for k in range(n_days)]
    results = {
        "a": [day(100.0 + 3 * k + (k % 2)) for k in range(n_days)],
        "b": [day(90.0 + 2 * k) for k in range(n_days)],
    }
    return build_report("days", labels, results, [("a", "b")])


@pytest.mark.parametrize("n_days", [1, 2, MIN_DAYS_FOR_CI - 1])
def test_below_five_days_there_is_no_interval_nor_p_value(n_days):
    report = report_of(n_days)
    assert report["days"] == n_days
    assert report["statistics"]["intervals"] is False
    assert f"only {plural(n_days, 'distinct day')}" in report["statistics"]["reason"]
    assert report["policies"]["a"]["reward"]["ci95"] is None
    assert report["paired"]["a_vs_b"]["ci95"] is None
    assert report["paired"]["a_vs_b"]["p_value"] is None
    table = format_table(report)
    assert "CI" not in table.split("\n", 1)[1] and "p =" not in table and "±" not in table
    assert f"{plural(n_days, 'distinct day')}, mean only" in table


def test_from_five_days_on_intervals_and_p_values_are_given():
    report = report_of(MIN_DAYS_FOR_CI)
    assert report["statistics"] == {
        "confidence": 0.95,
        "min_days": MIN_DAYS_FOR_CI,
        "intervals": True,
        "reason": None,
    }
    low, high = report["policies"]["a"]["reward"]["ci95"]
    assert low < report["policies"]["a"]["reward"]["mean"] < high
    assert 0.0 <= report["paired"]["a_vs_b"]["p_value"] <= 1.0
    assert "p = " in format_table(report)


def test_one_day_reads_one_day_not_one_days():
    table = format_table(report_of(1))
    assert "1 distinct day," in table and "1 days" not in table


def test_held_out_dates_and_the_cap_are_printed():
    report = report_of(2)
    report.update(
        held_out_days=["2025-10-05", "2025-10-06"],
        folder_days=6,
        days_available=3,
        episodes_cap=2,
    )
    table = format_table(report)
    assert "held out (the latest dates of the folder's 6, never trained on): " in table
    assert "2025-10-05, 2025-10-06" in table
    assert "--episodes 2 played the first 2 days of 3" in table


def test_an_uncertain_days_settings_are_printed_and_a_certain_day_says_nothing():
    report = report_of(2)
    report["uncertainty"] = {
        "travel_cv": 0.2,
        "no_show_rate": 0.05,
        "service_delay_cv": 0.0,
        "seed": 7,
    }
    table = format_table(report)
    assert "an uncertain day (--travel-noise 0.2, --no-show-rate 0.05, drawn from seed 7" in table
    assert "--service-delay" not in table
    report["uncertainty"] = {"travel_cv": 0.0, "no_show_rate": 0.0, "service_delay_cv": 0.0}
    assert "uncertain" not in format_table(report)


def test_plural():
    assert [plural(n, "day") for n in (0, 1, 2)] == ["0 days", "1 day", "2 days"]
    assert plural(1, "trial") == "1 trial"


def test_repeats_are_reported_as_repeats_of_one_day():
    report = report_of(5)
    report["repeats"] = {"count": 4, "policies": ["random"]}
    assert "random: mean of 4 runs of each day" in format_table(report)
    report["repeats"] = {"count": 4, "policies": []}
    assert "no stochastic policy here; each day is played once" in format_table(report)
