"""``--reward FILE`` on the verbs that play or solve days."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.cli import main
from rldispatch.rewards import RewardConfig

DOUBLE_LATE = {"late_pickup_penalty": 2 * RewardConfig().late_pickup_penalty}


@pytest.fixture
def double_late(tmp_path: Path) -> Path:
    path = tmp_path / "double_late.json"
    path.write_text(json.dumps(DOUBLE_LATE))
    return path


def test_simulate_scores_the_days_under_the_file_and_states_it(
    tmp_path: Path, double_late: Path
) -> None:
    reports = {}
    for name, extra in (("default", []), ("double", ["--reward", str(double_late)])):
        out = tmp_path / f"{name}.json"
        argv = ["simulate", "--policy", "insertion", "--episodes", "2", "--json", str(out)]
        assert main([*argv, *extra]) == 0
        reports[name] = json.loads(out.read_text())
    assert reports["default"]["reward_source"] == "default"
    assert reports["double"]["reward_source"] == f"--reward {double_late}"
    assert reports["double"]["reward_weights"]["late_pickup_penalty"] == 10.0
    late = reports["default"]["policies"]["insertion"]["late_pickup_rate"]["mean"]
    assert late > 0  # so the doubled penalty costs reward
    assert (
        reports["double"]["policies"]["insertion"]["reward"]["mean"]
        < reports["default"]["policies"]["insertion"]["reward"]["mean"]
    )


@pytest.mark.parametrize("verb", ["simulate", "solve", "evaluate", "train"])
def test_a_broken_reward_file_is_one_line_and_exit_2(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"km_costs": 1}))
    model = save_untrained_model(tmp_path / "model.safetensors")
    argv = {
        "simulate": ["simulate", "--episodes", "1"],
        "solve": ["solve", "--scenario", str(tmp_path / "day.json")],
        "evaluate": ["evaluate", "--model", str(model), "--episodes", "1"],
        "train": ["train", "--days", "1", "--out", str(tmp_path / "run"), "--no-progress"],
    }[verb]
    if verb == "solve":
        (tmp_path / "day.json").write_text("{}")
    assert main([*argv, "--reward", str(broken)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "km_costs" in error[0] and "did you mean 'km_cost'" in error[0]


def test_evaluate_under_other_weights_says_which_differ_and_reports_the_override(
    tmp_path: Path, double_late: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = save_untrained_model(tmp_path / "model.safetensors")
    out = tmp_path / "report.json"
    argv = ["evaluate", "--model", str(model), "--episodes", "1", "--json", str(out)]
    assert main([*argv, "--reward", str(double_late)]) == 0
    printed = capsys.readouterr().out
    assert "trained under other reward weights" in printed
    assert "late_pickup_penalty 5 -> 10" in printed
    report = json.loads(out.read_text())
    assert report["reward_override"] == {"pairwise": ["late_pickup_penalty 5 -> 10"]}
    assert main(argv) == 0  # the model's own weights: nothing to say
    assert "trained under other reward weights" not in capsys.readouterr().out
    assert json.loads(out.read_text())["reward_source"] == "model"


def test_a_model_trained_under_a_reward_file_records_its_weights(
    tmp_path: Path, double_late: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden": 16, "head_hidden": 16, "learning_starts": 20}))
    run = tmp_path / "run"
    argv = ["train", "--config", str(config), "--fleets", "5", "--days", "1", "--eval-days", "1"]
    assert main([*argv, "--out", str(run), "--no-progress", "--reward", str(double_late)]) == 0
    model = load_learned_model(run / "final_model.safetensors")
    assert model.env_config.reward == RewardConfig(**DOUBLE_LATE)
