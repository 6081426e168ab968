"""``rldispatch train --agent pairwise``, then ``evaluate``/``compare``/``plot`` with its model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.agents.model_files import load_learned_model, model_kind
from rldispatch.cli import main

TINY_PAIRWISE = {
    "agent": {"hidden": 16, "head_hidden": 16, "batch_size": 16},
    "days": {"fleet_sizes": [5, 6]},
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
            "--episodes",
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
    assert summary["agent"] == "pairwise"
    assert summary["days"] == 3
    model = Path(summary["best_model"])
    assert model_kind(model) == "pairwise"
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
    ("extra", "message"),
    [
        (["--scenarios", "."], "--scenarios: not available with --agent pairwise"),
        (["--resume"], "--resume: not available with --agent pairwise"),
        (["--preset", "classic"], "--preset"),
    ],
)
def test_pairwise_training_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["train", "--agent", "pairwise", "--out", str(tmp_path / "run"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_broken_pairwise_config_names_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"agent": {"gamma": 2.0}}))
    code = main(["train", "--agent", "pairwise", "--config", str(config), "--out", str(tmp_path)])
    assert code == 2
    assert "gamma" in capsys.readouterr().err


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


def test_export_onnx_says_a_pairwise_model_is_served_as_it_is(
    pairwise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = pairwise_run / "run" / "best_model.safetensors"
    code = main(["export-onnx", "--model", str(model), "--out", str(tmp_path / "m.onnx")])
    assert code == 2
    assert "pairwise model is served as it is" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
