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

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.cli import main
from rldispatch.training.tuning_settings import HeartbeatSettings, TuneSettings
from rldispatch.training.tuning_storage import delete_study, open_storage, open_study

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ["--agent", "dqn", "--preset", "geneva", "--episodes", "1", "--eval-days", "1"]
CLI = [sys.executable, "-c", "import sys; from rldispatch.cli import main; sys.exit(main())"]


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=url).get_trials()


def test_tune_pairwise_by_default_writes_every_output(tmp_path, capsys):
    tiny = PairwiseConfig(hidden=8, head_hidden=8, learning_starts=50, buffer_size=2_000)
    tiny.save(tmp_path / "tiny.json")
    out = tmp_path / "out"
    args = ["tune", "--days", "1", "--eval-days", "1", "--trials", "2", "--startup-trials", "1"]
    code = main(
        [*args, "--config", str(tmp_path / "tiny.json"), "--out", str(out),
         "--json", str(tmp_path / "s.json")]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 trials, 2 complete, 0 pruned, 0 failed" in printed
    assert "| rank | trial | reward | shaping | known | hidden |" in printed
    summary = json.loads((out / "tuning_summary.json").read_text())
    assert json.loads((tmp_path / "s.json").read_text()) == summary
    assert summary["agent"] == "pairwise" and summary["settings"]["days"]["source"] == "fleets"
    assert summary["trials"]["total"] == 2 and summary["this_worker"]["trials"]["total"] == 2
    values = [trial["value"] for trial in summary["top_trials"]]
    assert values == sorted(values, reverse=True)
    assert (out / "study.db").exists()  # SQLite by default
    config = PairwiseConfig.load(out / "optimal_config.json")
    assert config.to_dict() == summary["best_trial"]["config"]
    assert config.learning_starts == 50  # untuned: from --config
    table = (out / "top_trials.md").read_text()
    assert len(re.findall(r"^\| \d+ \| \d+ \| ", table, flags=re.MULTILINE)) == 2
    for name in ("optimization_history", "intermediate_values"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)


def test_budget_trials_is_a_global_budget_across_runs(tmp_path):
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    assert main(["tune", *FAST, "--trials", "2", "--out", str(out), "--no-plots"]) == 0
    assert main(["tune", *FAST, "--budget-trials", "3", "--out", str(out), "--no-plots"]) == 0
    assert len(_trials(url, "rldispatch")) == 3
    # The budget is used up: a worker with no per-worker limit runs nothing more.
    assert main(["tune", *FAST, "--budget-trials", "3", "--out", str(out), "--no-plots"]) == 0
    assert len(_trials(url, "rldispatch")) == 3
    # --trials 0 only writes the results of the study, whatever its settings and kind.
    report = tmp_path / "report"
    assert main(["tune", "--storage", url, "--trials", "0", "--out", str(report)]) == 0
    assert DQNConfig.load(report / "optimal_config.json") == DQNConfig.load(
        out / "optimal_config.json"
    )
    assert json.loads((report / "tuning_summary.json").read_text())["agent"] == "dqn"
    assert len(_trials(url, "rldispatch")) == 3
    assert main(["tune", "--storage", url, "--study", "nope", "--trials", "0"]) == 2


def test_a_worker_with_other_settings_than_the_study_exits_2(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = TuneSettings(agent="dqn", max_days=1, eval_days=1)
    open_study(open_storage(url, HeartbeatSettings()), "rldispatch", settings)
    other = ["--agent", "dqn", "--days", "2", "--eval-days", "1", "--storage", url]
    code = main(["tune", *other, "--trials", "1", "--out", str(tmp_path)])
    assert code == 2
    assert "max_days: study has 1, this worker 2" in capsys.readouterr().err
    assert _trials(url, "rldispatch") == []


def test_tune_trains_and_scores_trials_on_an_uncertain_day_and_the_study_records_it(
    tmp_path, capsys
):
    out = tmp_path / "out"
    noise = ["--travel-noise", "0.2", "--no-show-rate", "0.05", "--service-delay", "0.1"]
    assert main(["tune", *FAST, *noise, "--trials", "1", "--out", str(out), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    line = "on an uncertain day (travel noise 0.2, no-show rate 0.05, service delay 0.1)"
    assert f"trials {line}" in printed
    assert line in (out / "top_trials.md").read_text()
    summary = json.loads((out / "tuning_summary.json").read_text())
    wanted = {"travel_cv": 0.2, "no_show_rate": 0.05, "service_delay_cv": 0.1, "seed": 0}
    assert summary["settings"]["uncertainty"] == wanted
    (trial,) = _trials(f"sqlite:///{out / 'study.db'}", "rldispatch")
    run = json.loads((Path(trial.user_attrs["run_dir"]) / "run.json").read_text())
    assert run["env_config"]["uncertainty"] == wanted
    # A worker on the certain day does not join the study of the uncertain one.
    assert main(["tune", *FAST, "--trials", "1", "--out", str(out), "--no-plots"]) == 2
    assert "uncertainty: study has {'travel_cv': 0.2" in capsys.readouterr().err


def test_a_worker_with_another_agent_than_the_study_exits_2_in_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = TuneSettings(agent="dqn", max_days=1, eval_days=1)
    open_study(open_storage(url, HeartbeatSettings()), "flat", settings)
    code = main(
        ["tune", "--storage", url, "--study", "flat", "--days", "1", "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rldispatch tune: error: --agent pairwise: study flat tunes the dqn agent; start this "
        "worker with --agent dqn or choose another --study"
    )
    assert _trials(url, "flat") == []


def test_a_config_of_another_kind_exits_2_naming_the_field(tmp_path, capsys):
    DQNConfig().save(tmp_path / "dqn.json")
    code = main(["tune", "--config", str(tmp_path / "dqn.json"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--config {tmp_path / 'dqn.json'}: pairwise." in err and "unknown hyperparameter" in err


def test_minutes_alone_exits_2_for_a_space_scaled_by_the_days_of_a_trial(tmp_path, capsys):
    code = main(["tune", "--agent", "dqn", "--minutes", "2", "--out", str(tmp_path)])
    assert code == 2
    assert "--minutes alone: the dqn search space sets" in capsys.readouterr().err


def test_an_unreachable_database_exits_2_without_its_password(tmp_path, capsys):
    url = "postgresql+psycopg://nobody:s3cret@127.0.0.1:9/none"
    code = main(["tune", *FAST, "--storage", url, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "the database does not answer" in err and "s3cret" not in err


def _storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_killed_workers_trial_fails_after_the_grace_period_and_the_study_goes_on(
    kind, tmp_path, request
):
    url = _storage_url(kind, tmp_path, request)
    study = f"kill-{uuid.uuid4().hex[:10]}"
    args = [
        "tune", "--agent", "dqn", "--preset", "geneva", "--days", "3", "--eval-every", "1",
        "--eval-days", "1",
        "--storage", url, "--study", study, "--heartbeat-s", "1", "--grace-s", "2",
        "--pruner", "none", "--trials", "1", "--no-plots",
    ]  # fmt: skip
    # A small network that learns, so the trial lasts several seconds.
    settings = TuneSettings(agent="dqn", max_days=3, eval_days=1, eval_every=1)
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
    # One storage for the polls below: opening one per poll (as optuna.load_study(url) does)
    # costs 25 to 45 ms of CPU, taken from the worker starting meanwhile.
    polled = optuna.storages.RDBStorage(url)
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
                for t in polled.get_all_trials(polled.get_study_id_from_name(study))
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
        polled.engine.dispose()
        if kind == "postgres":
            delete_study(url, study)


@pytest.mark.slow
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
