"""``rldispatch train`` / ``evaluate`` / ``compare`` / ``plot`` from the command line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rldispatch.agents.dqn.config import save_config
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import main
from tests.helpers import TINY


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    return save_config(tmp_path / "tiny.json", TINY["dqn"])


def train_args(
    config: Path,
    out: Path,
    days: int,
    *extra: str,
    kind_args: tuple[str, ...] = ("--agent", "dqn", "--preset", "geneva"),
    checkpoint_every: int = 2,
) -> list[str]:
    return [
        "train",
        *kind_args,
        "--episodes",  # the alias of --days
        str(days),
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
        str(checkpoint_every),
        "--no-progress",
        *extra,
    ]


def start_training(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rldispatch.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def kill_after_a_checkpoint(process: subprocess.Popen, checkpoint: Path, wait_s: float) -> None:
    """``kill -9`` the run ``wait_s`` seconds after its next checkpoint is written."""
    before = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
    try:
        deadline = time.monotonic() + 180
        while not checkpoint.exists() or checkpoint.stat().st_mtime_ns == before:
            assert process.poll() is None, "training ended before the next checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 180 s"
            time.sleep(0.02)
        time.sleep(wait_s)  # on past the checkpoint, maybe into the next write
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


KIND_ARGS = {
    "dqn": ["--agent", "dqn", "--preset", "geneva"],
    "pairwise": ["--agent", "pairwise", "--fleets", "5-6"],
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_killed_twice_and_resumed_a_run_ends_with_the_uninterrupted_runs_weights(
    tmp_path: Path, kind: str
) -> None:
    config = tmp_path / "tiny.json"
    tiny = TINY[kind]
    tiny.save(config)
    days = 8

    def args(out: Path, *extra: str) -> list[str]:
        return train_args(
            config, out, days, *extra, kind_args=tuple(KIND_ARGS[kind]), checkpoint_every=1
        )

    assert main(args(tmp_path / "straight")) == 0
    out = tmp_path / "killed"
    checkpoint = out / "checkpoints" / "resume.pt"
    rng = random.Random(7)
    kill_after_a_checkpoint(start_training(args(out)), checkpoint, rng.uniform(0.0, 0.5))
    resumed = [a for a in args(out, "--resume") if a not in ("--config", str(config))]
    kill_after_a_checkpoint(start_training(resumed), checkpoint, rng.uniform(0.0, 0.5))
    killed_at = json.loads((out / "training_metrics.json").read_text())["summary"]["days"]
    assert 1 <= killed_at < days
    assert main(resumed) == 0
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert [record["day"] for record in metrics["days"]] == list(range(1, days + 1))
    for name in ("final_model.safetensors", "best_model.safetensors"):
        first = load_learned_model(tmp_path / "straight" / name).policy.network.state_dict()
        second = load_learned_model(out / name).policy.network.state_dict()
        for key in first:
            assert torch.equal(first[key], second[key]), (name, key)
    assert not list(out.rglob("*.tmp"))  # no temporary file left from a killed write


def test_resume_with_a_config_or_without_a_checkpoint_is_refused(tmp_path, capsys) -> None:
    code = main(["train", "--agent", "dqn", "--out", str(tmp_path / "none"), "--resume"])
    assert code == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


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
    config = save_config(out / "tiny.json", TINY["dqn"])
    assert main(train_args(config, out / "run", 2)) == 0
    return out / "run" / "best_model.safetensors"


@pytest.fixture(scope="module")
def evaluated_report(tmp_path_factory, trained_model) -> Path:
    """``evaluate --compare-baseline`` of the trained model on three held-out days."""
    report_path = tmp_path_factory.mktemp("evaluated") / "report.json"
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
    return report_path


def test_evaluate_compares_with_every_baseline_on_the_same_days(evaluated_report):
    report = json.loads(evaluated_report.read_text())
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
            "--agent",
            "dqn",
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


def test_plot_writes_the_three_kinds_of_png(tmp_path, trained_model, evaluated_report) -> None:
    report_path = evaluated_report
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
