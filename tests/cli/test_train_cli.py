"""``rldispatch train`` / ``evaluate`` / ``compare`` / ``plot`` from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rldispatch.agents.dqn.config import DQNConfig, save_config
from rldispatch.agents.dqn.model_file import load_model
from rldispatch.cli import main

TINY = DQNConfig(
    hidden_sizes=(16,),
    buffer_size=2_000,
    batch_size=16,
    learning_starts=50,
    train_frequency=2,
    target_update_interval=100,
    epsilon_decay_steps=500,
)


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    return save_config(tmp_path / "tiny.json", TINY)


def train_args(config: Path, out: Path, episodes: int, *extra: str) -> list[str]:
    return [
        "train",
        "--preset",
        "geneva",
        "--episodes",
        str(episodes),
        "--config",
        str(config),
        "--out",
        str(out),
        "--seed",
        "1",
        "--eval-every",
        "2",
        "--eval-days",
        "2",
        "--checkpoint-every",
        "2",
        "--no-progress",
        *extra,
    ]


def test_kill_9_mid_run_then_resume_finishes_with_the_right_count(tmp_path, tiny_config):
    out = tmp_path / "run"
    checkpoint = out / "checkpoints" / "resume.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "rldispatch.cli", *train_args(tiny_config, out, 400)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert process.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(1.0)  # let it go on past the checkpoint, maybe into the next write
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    metrics = json.loads((out / "training_metrics.json").read_text())
    killed_at = metrics["summary"]["episodes"]
    assert 2 <= killed_at < 400

    episodes = killed_at + 3
    summary = tmp_path / "summary.json"
    code = main(train_args(tiny_config, out, episodes, "--resume", "--json", str(summary)))
    assert code == 0
    result = json.loads(summary.read_text())
    assert result["episodes"] == episodes
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert [e["episode"] for e in metrics["episodes"]] == list(range(1, episodes + 1))
    best = load_model(result["best_model"])
    assert best.metadata.observation_size == 122
    assert not list(out.rglob("*.tmp"))  # no temporary file left from the killed write


def test_train_refuses_a_bad_config_in_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": -1}))
    code = main(train_args(bad, tmp_path / "run", 2))
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "dqn.learning_rate" in err


def test_train_refuses_to_overwrite_a_run(tmp_path, tiny_config, capsys) -> None:
    assert main(train_args(tiny_config, tmp_path / "run", 2)) == 0
    assert main(train_args(tiny_config, tmp_path / "run", 2)) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    config = save_config(out / "tiny.json", TINY)
    assert main(train_args(config, out / "run", 2)) == 0
    return out / "run" / "best_model.safetensors"


def test_evaluate_compares_with_every_baseline_on_the_same_days(tmp_path, trained_model):
    report_path = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(trained_model),
            "--episodes",
            "3",
            "--compare-baseline",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report["policies"]) == {
        "dqn",
        "random",
        "nearest",
        "insertion",
        "matching",
        "reopt",
    }
    assert report["seeds"] == [2_000_000, 2_000_001, 2_000_002]  # held-out days
    assert set(report["paired"]) == {
        "dqn_vs_random",
        "dqn_vs_nearest",
        "dqn_vs_insertion",
        "dqn_vs_matching",
        "dqn_vs_reopt",
    }
    for pair in report["paired"].values():
        assert {"reward_diff_mean", "ci95", "p_value"} <= set(pair)
    assert report["model"]["version"].startswith("dqn-")


def test_evaluate_refuses_a_truncated_model_in_one_line(tmp_path, trained_model, capsys):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(trained_model.read_bytes()[:5000])
    assert main(["evaluate", "--model", str(cut), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated" in err and err.count("\n") == 0


def test_evaluate_refuses_a_foreign_file(tmp_path, capsys) -> None:
    foreign = tmp_path / "model.safetensors"
    foreign.write_text('{"weights": [1, 2, 3]}')
    assert main(["evaluate", "--model", str(foreign), "--episodes", "1"]) == 2
    assert "not an rldispatch model file" in capsys.readouterr().err


def test_compare_puts_models_and_baselines_side_by_side(tmp_path, trained_model) -> None:
    report_path = tmp_path / "compare.json"
    code = main(
        [
            "compare",
            str(trained_model),
            "nearest",
            "insertion",
            "--episodes",
            "2",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    label = "run/best_model"
    assert list(report["policies"]) == [label, "nearest", "insertion"]
    assert set(report["paired"]) == {f"{label}_vs_nearest", f"{label}_vs_insertion"}


def test_compare_trains_a_config_entry(tmp_path, tiny_config) -> None:
    report_path = tmp_path / "compare.json"
    code = main(
        [
            "compare",
            str(tiny_config),
            "nearest",
            "--episodes",
            "1",
            "--train-episodes",
            "2",
            "--work-dir",
            str(tmp_path / "work"),
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    assert (tmp_path / "work" / "tiny" / "final_model.safetensors").exists()
    assert list(json.loads(report_path.read_text())["policies"]) == ["tiny", "nearest"]


def test_plot_writes_the_three_kinds_of_png(tmp_path, trained_model) -> None:
    report_path = tmp_path / "report.json"
    main(
        [
            "evaluate",
            "--model",
            str(trained_model),
            "--episodes",
            "2",
            "--compare-baseline",
            "--json",
            str(report_path),
        ]
    )
    run_dir = trained_model.parent
    outputs = {
        "training.png": ["plot", "training", str(run_dir)],
        "training_tb.png": ["plot", "training", str(run_dir / "tensorboard")],
        "report.png": ["plot", "report", str(report_path)],
        "routes.png": ["plot", "routes", "--model", str(trained_model)],
        "routes_nearest.png": ["plot", "routes", "--policy", "nearest", "--day-seed", "7"],
    }
    for name, args in outputs.items():
        assert main([*args, "--out", str(tmp_path / name)]) == 0, name
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
