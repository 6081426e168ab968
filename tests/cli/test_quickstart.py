"""``rldispatch quickstart``: trains, evaluates against every baseline (reopt on the days it
plays meanwhile), writes its files."""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rldispatch.agents.model_files import model_kind
from rldispatch.cli import main
from rldispatch.cli.quickstart import (
    GUIDED_REOPT_NOTE,
    _play_reopt_day,
    comparison_report,
    played_in_time,
    quickstart_table,
)
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.training.callbacks import LABELLED_KIND_TAGS, TENSORBOARD_TAGS
from rldispatch.training.checkpoint import load_checkpoint
from rldispatch.training.evaluation import evaluate_policies, evaluate_policy


@pytest.mark.slow
def test_quickstart_trains_the_pairwise_model_and_compares_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "quickstart"
    code = main(
        [
            "quickstart",
            "--out",
            str(out),
            "--episodes",
            "2",
            "--days",
            "2",
            "--no-progress",
            "--json",
            str(tmp_path / "summary.json"),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert json.loads((tmp_path / "summary.json").read_text()) == report
    baselines = ("random", "nearest", "insertion", "matching", "reopt")
    assert set(report["policies"]) == {"pairwise", *baselines}
    assert set(report["paired"]) == {f"pairwise_vs_{name}" for name in baselines}
    assert "reopt" in report["decision_time_ms"]
    assert "reopt" not in report  # it played every day: one more row, no second table
    assert report["training"]["kind"] == "pairwise"
    assert report["training"]["days"] == 2
    assert report["episodes"] == 2
    assert model_kind(out / "model.safetensors").name == "pairwise"
    events = EventAccumulator(str(out / "train" / "tensorboard"))
    events.Reload()
    no_gradient_step_yet = {"losses/td_loss", "losses/q_values"}  # 2 days < learning_starts
    expected = set(TENSORBOARD_TAGS) - no_gradient_step_yet - LABELLED_KIND_TAGS
    assert expected <= set(events.Tags()["scalars"])
    for name in ("training_curves.png", "comparison.png", "routes.png", "table.txt"):
        assert (out / name).stat().st_size > 100, name
    checkpoint = load_checkpoint(out / "train" / "checkpoints" / "resume.pt")
    assert checkpoint["learner"]["buffer"] is None  # the replay buffer is left out by default
    printed = capsys.readouterr().out
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    assert f"{out}: {size_mb:.1f} MB" in printed
    if report["training"]["best_day"] == 0:
        assert "the model kept is the untrained start: " in printed


def short_days(count: int, bookings: int = 25) -> list[Scenario]:
    """Held-out geneva days cut to their first bookings (a quick reopt)."""
    days = [make_preset("geneva", seed) for seed in HELD_OUT_SEEDS[:count]]
    return [replace(day, bookings=day.bookings[:bookings]) for day in days]


def test_reopt_on_fewer_days_is_compared_on_those_days_alone() -> None:
    days, seeds = short_days(6), list(HELD_OUT_SEEDS[:6])
    config = replace(EnvConfig(), max_drivers=len(days[0].drivers))
    policies = {"insertion": make_baseline("insertion"), "nearest": make_baseline("nearest")}
    results = evaluate_policies(policies, days, config)
    reopt = evaluate_policy(ReoptPolicy(), days[:5], config)
    report = comparison_report("insertion", seeds, results, reopt)
    assert set(report["policies"]) == {"insertion", "nearest"}
    assert report["episodes"] == 6
    part = report["reopt"]
    assert (part["seeds"], part["episodes"]) == (seeds[:5], 5)
    assert set(part["policies"]) == {"insertion", "reopt"}
    learned = results["insertion"]
    differences = [a.reward - b.reward for a, b in zip(learned[:5], reopt, strict=True)]
    paired = part["paired"]["insertion_vs_reopt"]
    assert paired["reward_diff_mean"] == pytest.approx(sum(differences) / 5)
    assert paired["ci95"] is not None
    table = quickstart_table(report)
    assert "reopt played (the first 5 of 6; its paired difference is on these days)" in table
    assert "insertion_vs_reopt: reward difference" in table
    assert GUIDED_REOPT_NOTE in table  # guided-reopt untrained is reopt

    reopt += evaluate_policy(ReoptPolicy(), days[5:], config)
    every_day = comparison_report("insertion", seeds, results, reopt)
    assert "reopt" not in every_day
    assert GUIDED_REOPT_NOTE in quickstart_table(every_day)
    without_reopt = comparison_report("insertion", seeds, results, [])
    assert GUIDED_REOPT_NOTE not in quickstart_table(without_reopt)
    assert set(every_day["policies"]) == {"insertion", "nearest", "reopt"}
    differences = [a.reward - b.reward for a, b in zip(learned, reopt, strict=True)]
    assert every_day["paired"]["insertion_vs_reopt"]["reward_diff_mean"] == pytest.approx(
        sum(differences) / 6
    )


def test_reopt_days_not_played_by_the_deadline_are_left_out() -> None:
    days = short_days(2, bookings=10)  # the deadline is what is tested, not reopt: small days
    config = replace(EnvConfig(), max_drivers=len(days[0].drivers))
    tasks = [(day, config) for day in days]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert played_in_time(pool.imap(_play_reopt_day, tasks), 2, time.perf_counter()) == []
        played = played_in_time(pool.imap(_play_reopt_day, tasks), 2, time.perf_counter() + 300)
    expected = evaluate_policy(ReoptPolicy(), days, config)
    assert [day.reward for day in played] == [day.reward for day in expected]
