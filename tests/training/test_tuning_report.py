"""What a study found: optimal config, top trials, importances and plots, from real studies."""

from __future__ import annotations

import json
import re

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.training.days import FleetDays
from rldispatch.training.tuning_report import (
    format_summary,
    ranked_trials,
    top_trials_markdown,
    write_outputs,
)
from rldispatch.training.tuning_settings import TuneSettings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETTINGS = TuneSettings(
    agent="pairwise",
    days=FleetDays(FleetDayDistribution(fleet_sizes=(5, 6))),
    max_days=4,
    eval_days=1,
    eval_every=2,
)
DISTRIBUTIONS = {
    "hidden": CategoricalDistribution((32, 64, 128)),
    "learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
}


def _study(url: str, results: list[tuple[TrialState, float | None, int, float]]) -> optuna.Study:
    """A study holding finished trials (state, value, hidden, learning rate)."""
    study = optuna.create_study(storage=url, study_name="found", direction="maximize")
    for state, value, hidden, learning_rate in results:
        params = {"hidden": hidden, "learning_rate": learning_rate}
        config = SETTINGS.config_for(params)
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs={"config": config.to_dict(), "worker": "here:1"},
                intermediate_values={2: (value or 500.0) - 5.0},
            )
        )
    return study


def test_the_optimal_config_is_the_best_completed_trials(tmp_path):
    study = _study(
        f"sqlite:///{tmp_path / 'study.db'}",
        [
            (TrialState.COMPLETE, 610.0, 32, 1e-4),
            (TrialState.COMPLETE, 640.0, 128, 3e-4),
            (TrialState.PRUNED, None, 64, 2e-5),
            (TrialState.COMPLETE, 640.0, 64, 5e-4),  # a tie: the earlier trial ranks first
            (TrialState.FAIL, None, 32, 1e-3),
        ],
    )
    assert [trial.number for trial in ranked_trials(study)] == [1, 3, 0]

    summary = write_outputs(study, SETTINGS, tmp_path / "out", "sqlite:///x.db")

    out = tmp_path / "out"
    config = PairwiseConfig.load(out / "optimal_config.json")
    assert (config.hidden, config.learning_rate) == (128, 3e-4)
    assert summary["agent"] == "pairwise" and summary["best_trial"]["number"] == 1
    assert summary["trials"]["complete"] == 3 and summary["trials"]["pruned"] == 1
    assert summary["trials"]["fail"] == 1 and summary["trials"]["total"] == 5
    assert json.loads((out / "tuning_summary.json").read_text()) == summary
    table = (out / "top_trials.md").read_text()
    assert "(pairwise)" in table and "after 4 training days" in table
    assert "| rank | trial | reward | shaping | known | hidden |" in table
    assert len(re.findall(r"^\| \d+ \| \d+ \| ", table, flags=re.MULTILINE)) == 3
    assert "values" in summary["importances"]
    for name in ("optimization_history", "intermediate_values", "param_importances"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    printed = format_summary(summary)
    assert "study found (pairwise, sqlite:///x.db): 5 trials, 3 complete, 1 pruned" in printed
    assert "best: trial 1, mean evaluation reward 640.0" in printed


def test_a_study_without_a_completed_trial_writes_no_optimal_config(tmp_path):
    study = _study(f"sqlite:///{tmp_path / 'study.db'}", [(TrialState.PRUNED, None, 32, 1e-4)])
    summary = write_outputs(study, SETTINGS, tmp_path / "out", "sqlite:///x.db")
    assert summary["best_trial"] is None and "optimal_config" not in summary["files"]
    assert not (tmp_path / "out" / "optimal_config.json").exists()
    assert summary["importances"] == {"error": "fewer than two completed trials"}


def test_the_summary_shows_the_storage_without_its_password(tmp_path):
    study = _study(f"sqlite:///{tmp_path / 'study.db'}", [(TrialState.COMPLETE, 1.0, 32, 1e-4)])
    url = "postgresql+psycopg://tuner:s3cret@db/tuning?password=s3cret"
    summary = write_outputs(study, SETTINGS, tmp_path / "out", url, plots=False)
    assert summary["storage"] == "postgresql+psycopg://tuner:***@db/tuning?password=***"
    assert "s3cret" not in (tmp_path / "out" / "tuning_summary.json").read_text()


def test_top_trials_show_every_parameter_of_the_space_in_its_order(tmp_path):
    study = _study(f"sqlite:///{tmp_path / 'study.db'}", [(TrialState.COMPLETE, 7.25, 64, 2e-4)])
    table = top_trials_markdown(ranked_trials(study), SETTINGS.space).splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["rank", "trial", "reward"] + [p.label for p in SETTINGS.space]
    row = dict(zip(header, (cell.strip() for cell in table[2].strip("|").split("|")), strict=True))
    assert (row["reward"], row["hidden"], row["lr"], row["shaping"]) == ("7.2", "64", "0.0002", "")
