"""Plots: curves from metrics or TensorBoard, comparison chart, a day's routes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.plots import (
    QUICKSTART_RUN,
    load_training_curves,
    moving_average,
    plot_comparison,
    plot_routes,
    plot_training_curves,
    record_routes,
)
from rldispatch.reports.report import build_report
from rldispatch.reports.route_map import _mark_bookings
from rldispatch.scenarios.presets import make_preset
from rldispatch.training.evaluation import evaluate_policies

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def metrics_document() -> dict:
    episodes = [
        {
            "total_steps": 100 * k,
            "reward": 800.0 + k,
            "epsilon": 1.0 - 0.1 * k,
            "td_loss": None if k == 1 else 0.5 / k,
            "q_mean": None if k == 1 else float(k),
        }
        for k in range(1, 6)
    ]
    evaluations = [{"total_steps": 200, "reward": 900.0}, {"total_steps": 400, "reward": 950.0}]
    return {"episodes": episodes, "evaluations": evaluations}


def test_moving_average_is_trailing_and_shorter_at_the_start() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(moving_average(values, 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(moving_average(values, 10), [1.0, 1.5, 2.0, 2.5])


def test_curves_from_training_metrics_skip_episodes_without_updates(tmp_path) -> None:
    path = tmp_path / "training_metrics.json"
    path.write_text(json.dumps(metrics_document()))
    curves = load_training_curves(tmp_path)
    np.testing.assert_allclose(curves["reward"].steps, [100, 200, 300, 400, 500])
    np.testing.assert_allclose(curves["td_loss"].steps, [200, 300, 400, 500])
    np.testing.assert_allclose(curves["eval_reward"].values, [900.0, 950.0])
    out = plot_training_curves(curves, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_curves_of_a_quickstart_folder_are_its_training_run(tmp_path) -> None:
    run = tmp_path / QUICKSTART_RUN
    run.mkdir()
    (run / "training_metrics.json").write_text(json.dumps(metrics_document()))
    curves = load_training_curves(tmp_path)
    np.testing.assert_allclose(curves["eval_reward"].values, [900.0, 950.0])
    (tmp_path / "training_metrics.json").write_text(json.dumps({"evaluations": []}))
    assert load_training_curves(tmp_path)["eval_reward"].values.size == 0  # its own first


def test_curves_from_tensorboard_logs(tmp_path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tensorboard"))
    for step, reward in ((10, 1.0), (20, 2.0), (30, 3.0)):
        writer.add_scalar("charts/episodic_return", reward, step)
        writer.add_scalar("charts/epsilon", 0.5, step)
    writer.close()
    curves = load_training_curves(tmp_path / "tensorboard")
    np.testing.assert_allclose(curves["reward"].steps, [10, 20, 30])
    np.testing.assert_allclose(curves["reward"].values, [1.0, 2.0, 3.0])
    assert curves["td_loss"].steps.size == 0


def test_missing_source_is_reported(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_training_curves(tmp_path / "nothing-here")


def test_comparison_chart_of_a_report(tmp_path) -> None:
    days = [make_preset("geneva", seed) for seed in (5, 6)]
    policies = {name: make_baseline(name) for name in ("nearest", "insertion")}
    report = build_report(
        "geneva", [5, 6], evaluate_policies(policies, days), [("insertion", "nearest")]
    )
    out = plot_comparison(report, tmp_path / "comparison.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_routes_keep_every_served_booking_in_pickup_order_and_mark_late_ones(tmp_path) -> None:
    day = record_routes(make_baseline("nearest"), make_preset("geneva", 8))
    served = [booking for route in day.routes for booking in route]
    assert len(served) == len(set(served)) == day.metrics.served
    assert int(day.late.sum()) == round(day.metrics.late_pickup_rate * day.metrics.served)
    assert int(day.cancelled.sum()) == day.metrics.cancelled
    for route in day.routes:
        times = day.pickup_min[route]
        assert np.all(np.diff(times) >= 0)
    out = plot_routes(day, tmp_path / "routes.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def fleet_document() -> dict:
    """A pairwise run's metrics: day records with their fleet size."""
    rng = np.random.default_rng(0)
    days = []
    for k in range(1, 121):
        drivers = int(rng.choice([5, 12, 20, 30]))
        days.append(
            {
                "steps": 100 * k,
                "reward": 100.0 * drivers + rng.normal(0, 20),
                "late_pickup_rate": 0.1,
                "epsilon": 0.05,
                "td_loss": 0.5,
                "q_mean": 3.0,
                "drivers": drivers,
            }
        )
    return {"days": days, "evaluations": [{"steps": 6000, "reward": 1800.0}]}


def test_pairwise_curves_keep_each_days_fleet_size(tmp_path) -> None:
    path = tmp_path / "training_metrics.json"
    path.write_text(json.dumps(fleet_document()))
    curves = load_training_curves(path)
    assert sorted(set(curves["reward"].drivers.tolist())) == [5, 12, 20, 30]
    assert curves["reward"].drivers.size == curves["reward"].values.size
    out = plot_training_curves(curves, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_a_flat_runs_curves_have_no_fleet_sizes(tmp_path) -> None:
    path = tmp_path / "training_metrics.json"
    path.write_text(json.dumps(metrics_document()))
    assert load_training_curves(path)["reward"].drivers is None


def test_fleet_bands_cover_every_size_once() -> None:
    from rldispatch.reports.plots import fleet_bands

    assert fleet_bands(np.array([5, 5, 7])) == [(5, 5), (7, 7)]
    bands = fleet_bands(np.arange(5, 31))
    assert len(bands) == 4 and bands[0][0] == 5 and bands[-1][1] == 30
    assert all(bands[k][1] < bands[k + 1][0] for k in range(3))


def test_interval_errors_are_clipped_to_the_metrics_range() -> None:
    from rldispatch.reports.plots import _interval_errors

    means = np.array([0.02, 0.5])
    bounds = np.array([[-0.03, 0.07], [0.4, 0.6]])
    errors = _interval_errors(means, bounds, (0.0, 1.0))
    np.testing.assert_allclose(errors, [[0.02, 0.1], [0.05, 0.1]])
    assert _interval_errors(means, np.full((2, 2), np.nan), (0.0, 1.0)) is None


def test_comparison_chart_of_a_report_with_too_few_days_for_intervals(tmp_path) -> None:
    policies = {"nearest": make_baseline("nearest"), "insertion": make_baseline("insertion")}
    days = [make_preset("classic", 5)]
    report = build_report(
        "classic", [5], evaluate_policies(policies, days), [("insertion", "nearest")]
    )
    assert report["policies"]["nearest"]["reward"]["ci95"] is None
    out = plot_comparison(report, tmp_path / "comparison.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_route_panels_and_driver_colours(tmp_path) -> None:
    from rldispatch.reports.plots import plot_route_panels
    from rldispatch.reports.route_map import driver_colors

    assert len(set(driver_colors(10))) == 10 and len(set(driver_colors(30))) == 30
    day = record_routes(make_baseline("nearest"), make_preset("classic", 3))
    out = plot_route_panels(day, tmp_path / "panels.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_late_pickups_at_one_place_are_one_ring_with_their_count(tmp_path) -> None:
    from rldispatch.reports.route_map import places_with_counts

    assert places_with_counts([(6.1, 46.2), (6.1000001, 46.2), (6.2, 46.3)]) == [
        ((6.1, 46.2), 2),
        ((6.2, 46.3), 1),
    ]
    day = record_routes(make_baseline("nearest"), make_preset("geneva", 8))
    late = np.flatnonzero(day.late)
    places = {tuple(np.round(day.scenario.bookings[b].pickup, 5)) for b in late}
    assert len(places) < late.size  # some late pickups share a place (a clinic)
    figure = Figure()
    axis = figure.subplots()
    handles = _mark_bookings(axis, day)
    rings = axis.collections[0].get_offsets()
    assert len(rings) == len(places)
    assert handles[0].get_label() == (
        f"late pickup ({late.size} at {len(places)} places; ×N: N there)"
    )
    counts = [int(text.get_text().removeprefix("×")) for text in axis.texts]
    assert sum(counts) + len(rings) - len(counts) == late.size


def test_depots_are_lettered_on_the_map_and_named_in_full_in_the_legend() -> None:
    from rldispatch.reports.route_map import _mark_depots, depot_name, depots

    assert [depot_name(k) for k in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]
    scenario = make_preset("geneva", 8)
    figure = Figure()
    axis = figure.subplots()
    axis.set_xlim(6.0, 6.3)
    handles = _mark_depots(axis, scenario)
    places = depots(scenario)
    assert [text.get_text() for text in axis.texts] == [depot_name(k) for k in range(len(places))]
    for handle, (_, ids) in zip(handles, places, strict=True):
        label = " ".join(handle.get_label().split())
        assert all(driver in label.split(": ", 1)[1].replace(",", " ").split() for driver in ids)


def test_the_comparison_chart_says_which_way_each_panel_is_better(tmp_path) -> None:
    days = [make_preset("geneva", seed) for seed in (5, 6)]
    policies = {name: make_baseline(name) for name in ("nearest", "insertion")}
    report = build_report(
        "geneva", [5, 6], evaluate_policies(policies, days), [("insertion", "nearest")]
    )
    titles: list[str] = []
    original = Axes.set_title

    def record(axis, label, *args, **kwargs):
        titles.append(label)
        return original(axis, label, *args, **kwargs)

    Axes.set_title = record
    try:
        plot_comparison(report, tmp_path / "comparison.png")
    finally:
        Axes.set_title = original
    assert "reward per day\n(higher is better)" in titles
    assert "late pickups (%)\n(lower is better)" in titles
    assert "km driven\n(lower is better)" in titles
    assert any("above 0: the first policy is better" in title for title in titles)


def test_the_evaluation_panel_marks_the_kept_model_and_keeps_a_wobble_small(tmp_path) -> None:
    from rldispatch.reports.plots import Curve, _evaluation_panel

    figure = Figure()
    axis = figure.subplots()
    values = np.array([2222.0, 2175.0, 2200.0, 2222.0])
    _evaluation_panel(axis, Curve(np.array([0.0, 1e4, 2e4, 3e4]), values))
    star = axis.get_legend().get_texts()[0].get_text()
    assert star == "kept model (the untrained start): 2,222.0 at step 0"
    low, high = axis.get_ylim()
    assert high - low >= 0.1 * values.mean()
