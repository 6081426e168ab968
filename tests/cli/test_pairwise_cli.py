"""``rldispatch train --agent pairwise``, then ``evaluate``/``compare``/``plot`` with its model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.agents.model_files import load_learned_model, model_kind
from rldispatch.cli import main

TINY_PAIRWISE = {
    "hidden": 16,
    "head_hidden": 16,
    "batch_size": 16,
    "learning_starts": 50,
    "buffer_size": 2_000,
}


@pytest.fixture(scope="module")
def pairwise_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairwise")
    config = out / "config.json"
    config.write_text(json.dumps(TINY_PAIRWISE))
    code = main(
        [
            "train",
            "--agent",
            "pairwise",
            "--config",
            str(config),
            "--fleets",
            "5-6",
            "--days",
            "3",
            "--eval-every",
            "2",
            "--eval-days",
            "1",
            "--out",
            str(out / "run"),
            "--no-progress",
            "--json",
            str(out / "summary.json"),
        ]
    )
    assert code == 0
    return out


def test_training_writes_a_pairwise_model_and_a_summary(pairwise_run: Path) -> None:
    summary = json.loads((pairwise_run / "summary.json").read_text())
    assert summary["kind"] == "pairwise"
    assert summary["days"] == 3
    model = Path(summary["best_model_path"])
    assert model_kind(model).name == "pairwise"
    loaded = load_learned_model(model)
    assert loaded.policy.network.hidden == 16


def test_evaluate_plays_a_pairwise_model_on_a_fleet_it_never_saw(
    pairwise_run: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(pairwise_run / "run" / "best_model.safetensors"),
            "--preset",
            "classic",
            "--episodes",
            "1",
            "--compare-baseline",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["model"]["kind"] == "pairwise"
    assert set(report["policies"]) == {
        "pairwise",
        "random",
        "nearest",
        "insertion",
        "matching",
        "reopt",
    }
    assert "pairwise_vs_insertion" in report["paired"]
    assert report["policies"]["pairwise"]["completion_rate"]["mean"] > 0.5


def test_evaluate_plays_the_lookahead_expert_beside_the_model_it_looks_ahead_with(
    pairwise_run: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    model = pairwise_run / "run" / "best_model.safetensors"
    code = main(
        ["evaluate", "--model", str(model), "--episodes", "2", "--lookahead", "2"]
        + ["--preset", "classic", "--json", str(report_path)]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report["policies"]) == {"pairwise", "pairwise+lookahead"}
    assert "pairwise_vs_pairwise+lookahead" in report["paired"]
    assert (
        report["decision_time_ms"]["pairwise+lookahead"]["mean"]
        > (report["decision_time_ms"]["pairwise"]["mean"])
    )


def test_evaluate_refuses_the_lookahead_for_a_flat_model_or_no_candidates(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.service.helpers import make_model_file

    flat = make_model_file(tmp_path / "flat.safetensors", hidden_sizes=(8,))
    assert main(["evaluate", "--model", str(flat), "--lookahead", "2", "--episodes", "1"]) == 2
    error = capsys.readouterr().err
    assert "--lookahead: a dqn model" in error
    assert "has no look ahead" in error
    model = pairwise_run / "run" / "best_model.safetensors"
    assert main(["evaluate", "--model", str(model), "--lookahead", "-1", "--episodes", "1"]) == 2
    assert "--lookahead: must be at least 1" in capsys.readouterr().err


def test_compare_takes_a_pairwise_model_beside_a_baseline(
    pairwise_run: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "compare.json"
    model = pairwise_run / "run" / "final_model.safetensors"
    code = main(["compare", str(model), "nearest", "--episodes", "1", "--json", str(report_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report["policies"]) == {"run/final_model", "nearest"}
    assert report["models"]["run/final_model"]["kind"] == "pairwise"


def test_plot_draws_a_pairwise_models_routes(pairwise_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "routes.png"
    model = pairwise_run / "run" / "best_model.safetensors"
    assert main(["plot", "routes", "--model", str(model), "--out", str(out)]) == 0
    assert out.stat().st_size > 1_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agent", "dqn", "--fleets", "5-8"], "--fleets: not an option of train --agent dqn"),
        (["--agent", "pairwise", "--resume"], "no checkpoint to resume from"),
    ],
)
def test_train_refuses_what_does_not_apply_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["train", *argv, "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err


def test_train_refuses_a_budget_of_no_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--max-minutes", "-1", "--out", "unused"])
    assert exited.value.code == 2
    assert "--max-minutes: must be a number of minutes > 0" in capsys.readouterr().err


def test_train_help_lists_only_the_options_of_the_chosen_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for kind, has_fleets in (("pairwise", True), ("dqn", False)):
        with pytest.raises(SystemExit):
            main(["train", "--agent", kind, "--help"])
        assert ("--fleets" in capsys.readouterr().out) == has_fleets


def test_a_broken_pairwise_config_names_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"gamma": 2.0}))
    code = main(["train", "--agent", "pairwise", "--config", str(config), "--out", str(tmp_path)])
    assert code == 2
    assert "pairwise.gamma" in capsys.readouterr().err


def test_a_truncated_model_file_is_refused_in_one_line(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.safetensors"
    data = (pairwise_run / "run" / "best_model.safetensors").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    code = main(["evaluate", "--model", str(broken), "--episodes", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and len(err.splitlines()) == 1


def test_export_onnx_writes_a_pairwise_model_that_serves(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = pairwise_run / "run" / "best_model.safetensors"
    out = tmp_path / "m.onnx"
    code = main(["export-onnx", "--model", str(model), "--out", str(out), "--check-states", "50"])
    assert code == 0, capsys.readouterr().err
    assert "ONNX Runtime vs the reference on 50 states" in capsys.readouterr().out
    from rldispatch.service.models.loading import load_served_model

    served = load_served_model(out)
    assert (served.kind, served.runtime) == ("pairwise", "onnx")


def test_evaluate_on_one_scenario_file_reports_one_day_and_no_interval(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rldispatch.scenarios.files import save_scenario
    from rldispatch.scenarios.presets import make_preset

    day = save_scenario(make_preset("classic", 1), tmp_path / "2025-10-01.json")
    report_path = tmp_path / "report.json"
    model = pairwise_run / "run" / "best_model.safetensors"
    code = main(
        ["evaluate", "--model", str(model), "--scenario", str(day)]
        + ["--compare-baseline", "--json", str(report_path)]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["days"] == report["episodes"] == 1
    assert report["paired"]["pairwise_vs_nearest"]["p_value"] is None
    out = capsys.readouterr().out
    assert "1 distinct day, mean only" in out and "p =" not in out


def test_evaluate_on_a_folder_of_six_days_names_the_held_out_date(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rldispatch.scenarios.files import save_scenario
    from rldispatch.scenarios.presets import make_preset

    for k in range(1, 7):
        save_scenario(make_preset("classic", k), tmp_path / "days" / f"2025-10-0{k}.json")
    report_path = tmp_path / "report.json"
    model = pairwise_run / "run" / "best_model.safetensors"
    code = main(
        ["evaluate", "--model", str(model), "--scenarios", str(tmp_path / "days")]
        + ["--compare-baseline", "--json", str(report_path)]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["held_out_days"] == ["2025-10-06"] and report["folder_days"] == 6
    assert report["statistics"]["intervals"] is False
    out = capsys.readouterr().out
    assert "held out (the latest dates of the folder's 6, never trained on): 2025-10-06" in out
    assert "CI" not in out and "p =" not in out
