"""``rldispatch tune``: outputs, the global budget, killed workers, many workers on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import create_engine, text

from rldispatch.agents.dqn.config import load_config
from rldispatch.cli import main
from rldispatch.training.tuner import (
    HeartbeatSettings,
    TuneSettings,
    delete_study,
    open_storage,
    open_study,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ["--preset", "geneva", "--episodes", "1", "--eval-days", "1"]
CLI = [sys.executable, "-c", "import sys; from rldispatch.cli import main; sys.exit(main())"]


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=url).get_trials()


def test_tune_writes_every_output_and_counts_the_trials(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["tune", *FAST, "--trials", "3", "--out", str(out), "--json", str(tmp_path / "s.json")]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 trials, 3 complete, 0 pruned, 0 failed" in printed
    assert "| rank | trial | reward | lr |" in printed
    summary = json.loads((out / "tuning_summary.json").read_text())
    assert json.loads((tmp_path / "s.json").read_text()) == summary
    assert summary["trials"]["total"] == 3 and summary["this_worker"]["trials"]["total"] == 3
    assert len(summary["top_trials"]) == 3
    values = [trial["value"] for trial in summary["top_trials"]]
    assert values == sorted(values, reverse=True)
    assert (out / "study.db").exists()  # SQLite by default
    config = load_config(out / "optimal_config.json")
    assert config.to_dict() == summary["best_trial"]["config"]
    assert "importances" in summary
    table = (out / "top_trials.md").read_text()
    assert len(re.findall(r"^\| \d+ \| \d+ \| ", table, flags=re.MULTILINE)) == 3
    for name in ("optimization_history", "intermediate_values"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    # train --config reads optimal_config.json as it is
    run = tmp_path / "run"
    train = ["train", "--config", str(out / "optimal_config.json"), "--preset", "geneva"]
    assert main([*train, "--episodes", "1", "--eval-every", "0", "--no-progress",
                 "--out", str(run)]) == 0  # fmt: skip
    assert (run / "final_model.safetensors").exists()


def test_budget_trials_is_a_global_budget_across_runs(tmp_path):
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    assert main(["tune", *FAST, "--trials", "2", "--out", str(out), "--no-plots"]) == 0
    assert main(["tune", *FAST, "--budget-trials", "3", "--out", str(out), "--no-plots"]) == 0
    assert len(_trials(url, "rldispatch")) == 3
    # The budget is used up: a worker with no per-worker limit runs nothing more.
    assert main(["tune", *FAST, "--budget-trials", "3", "--out", str(out), "--no-plots"]) == 0
    assert len(_trials(url, "rldispatch")) == 3
    # --trials 0 only writes the results of the study, whatever its settings.
    report = tmp_path / "report"
    assert main(["tune", "--storage", url, "--trials", "0", "--out", str(report)]) == 0
    assert load_config(report / "optimal_config.json") == load_config(out / "optimal_config.json")
    assert len(_trials(url, "rldispatch")) == 3
    assert main(["tune", "--storage", url, "--study", "nope", "--trials", "0"]) == 2


def test_a_worker_with_other_settings_than_the_study_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tune", *FAST, "--trials", "1", "--out", str(out), "--no-plots"]) == 0
    other = ["--preset", "geneva", "--episodes", "2", "--eval-days", "1"]
    code = main(["tune", *other, "--trials", "1", "--out", str(out)])
    assert code == 2
    assert "episodes: study has 1, this worker 2" in capsys.readouterr().err


def test_an_unreachable_database_exits_2(tmp_path, capsys):
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    code = main(["tune", *FAST, "--storage", url, "--out", str(tmp_path)])
    assert code == 2
    assert "the database does not answer" in capsys.readouterr().err


def _storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_killed_workers_trial_fails_after_the_grace_period_and_the_study_goes_on(
    kind, tmp_path, request
):
    url = _storage_url(kind, tmp_path, request)
    study = f"kill-{uuid.uuid4().hex[:10]}"
    args = [
        "tune", "--preset", "geneva", "--episodes", "3", "--eval-every", "1", "--eval-days", "1",
        "--storage", url, "--study", study, "--heartbeat-s", "1", "--grace-s", "2",
        "--pruner", "none", "--trials", "1", "--no-plots",
    ]  # fmt: skip
    # A small network that learns, so the trial lasts several seconds.
    settings = TuneSettings(preset="geneva", episodes=3, eval_days=1, eval_every=1)
    storage = open_storage(url, HeartbeatSettings(1, 2))
    opened = open_study(storage, study, settings)
    params = {
        "learning_rate": 1e-3, "gamma": 0.99, "batch_size": 32, "buffer_size": 10_000,
        "learning_starts_share": 0.2, "train_frequency": 1, "gradient_steps": 1,
        "target_update": "hard-500", "n_step": 1, "epsilon_end": 0.05,
        "epsilon_decay_share": 0.5, "hidden_sizes": "64", "max_grad_norm": 10.0,
        "dueling": False,
    }  # fmt: skip
    opened.study.enqueue_trial(params)
    engine = create_engine(url)
    try:
        log = tmp_path / "worker_a.log"
        with log.open("wb") as log_file:
            worker = subprocess.Popen(
                [*CLI, *args, "--out", str(tmp_path / "a")],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        deadline = time.monotonic() + 60
        while True:
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker never started its trial"
            # running and training: its parameters are chosen, its heartbeat is recorded
            running = [
                t
                for t in _trials(url, study)
                if t.state == TrialState.RUNNING and "config" in t.user_attrs
            ]
            if running:
                with engine.connect() as connection:
                    beats = connection.execute(
                        text("select count(*) from trial_heartbeats where trial_id = :id"),
                        {"id": running[0]._trial_id},
                    ).scalar()
                if beats:
                    break
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        (killed,) = _trials(url, study)
        assert killed.state == TrialState.RUNNING  # nobody cleans up after a kill -9 ...

        time.sleep(3.5)  # ... until the grace period (2 s) has passed and a worker starts
        assert main([*args, "--out", str(tmp_path / "b")]) == 0

        trials = _trials(url, study)
        assert trials[0].state == TrialState.FAIL
        retried = trials[1]
        assert retried.state == TrialState.COMPLETE
        assert retried.system_attrs["failed_trial"] == 0  # the same trial, run again
        assert retried.params == killed.params == params
        assert (tmp_path / "b" / "optimal_config.json").exists()
    finally:
        engine.dispose()
        if kind == "postgres":
            delete_study(url, study)


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study(postgres_url, tmp_path):
    study = f"pair-{uuid.uuid4().hex[:10]}"
    args = ["tune", *FAST, "--storage", postgres_url, "--study", study, "--trials", "2",
            "--no-plots"]  # fmt: skip
    try:
        workers = [
            subprocess.Popen(
                [*CLI, *args, "--out", str(tmp_path / f"w{index}")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for index in range(2)
        ]
        for worker in workers:
            _, err = worker.communicate(timeout=180)
            assert worker.returncode == 0, err.decode()

        trials = _trials(postgres_url, study)
        assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        by_worker: dict[str, int] = {}
        for trial in trials:
            by_worker[trial.user_attrs["worker"]] = by_worker.get(trial.user_attrs["worker"], 0) + 1
        assert sorted(by_worker.values()) == [2, 2]  # both workers contributed their trials
        engine = create_engine(postgres_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "select t.number from trials t join studies s on s.study_id = t.study_id"
                        " where s.study_name = :name"
                    ),
                    {"name": study},
                ).all()
        finally:
            engine.dispose()
        assert sorted(number for (number,) in rows) == [0, 1, 2, 3]  # one study, distinct numbers
    finally:
        delete_study(postgres_url, study)
