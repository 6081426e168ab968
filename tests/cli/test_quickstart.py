"""``rldispatch quickstart``: trains, evaluates against every baseline, writes its files."""

from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rldispatch.agents.model_files import model_kind
from rldispatch.cli import main
from rldispatch.training.callbacks import TENSORBOARD_TAGS


def test_quickstart_trains_the_pairwise_model_and_compares_it(tmp_path: Path) -> None:
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
    assert set(report["policies"]) == {"pairwise", "random", "nearest", "insertion", "matching"}
    assert set(report["paired"]) == {
        f"pairwise_vs_{name}" for name in ("random", "nearest", "insertion", "matching")
    }
    assert report["training"]["kind"] == "pairwise"
    assert report["training"]["days"] == 2
    assert report["episodes"] == 2
    assert model_kind(out / "model.safetensors").name == "pairwise"
    events = EventAccumulator(str(out / "train" / "tensorboard"))
    events.Reload()
    no_gradient_step_yet = {"losses/td_loss", "losses/q_values"}  # 2 days < learning_starts
    assert set(TENSORBOARD_TAGS) - no_gradient_step_yet <= set(events.Tags()["scalars"])
    for name in ("training_curves.png", "comparison.png", "routes.png", "table.txt"):
        assert (out / name).stat().st_size > 100, name
