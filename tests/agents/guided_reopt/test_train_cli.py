"""``rldispatch train --agent guided-reopt`` on a tiny budget."""

from __future__ import annotations

import json

from rldispatch.agents.kinds import agent_kind
from rldispatch.cli import main


def test_train_cli_writes_a_model_that_loads_and_a_label_cache(tmp_path, capsys) -> None:
    cache = tmp_path / "labels"
    config = tmp_path / "guided.json"
    config.write_text(
        json.dumps(
            {
                "label_every": 10,
                "label_solution_limit": 3,
                "updates_per_day": 2,
                "label_cache": str(cache),
            }
        )
    )
    out = tmp_path / "run"
    code = main(
        [
            "train", "--agent", "guided-reopt", "--fleets", "3", "--days", "1",
            "--eval-every", "0", "--config", str(config), "--out", str(out), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    assert "trained guided-reopt for 1 day" in capsys.readouterr().out
    model = agent_kind("guided-reopt").load_model(out / "final_model.safetensors")
    assert model.kind == "guided-reopt"
    assert list(cache.glob("*.json"))
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["days"][0]["labelled_states"] > 0


def test_train_cli_refuses_a_bad_guided_config_in_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"terms": "arcs"}))
    code = main(
        ["train", "--agent", "guided-reopt", "--days", "1", "--config", str(config),
         "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 2
    assert "guided-reopt.terms" in capsys.readouterr().err
