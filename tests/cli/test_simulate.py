import json
from pathlib import Path

import pytest

from rldispatch.cli import main
from rldispatch.sim.metrics import METRIC_NAMES

CORDEAU_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "cordeau"


def test_simulate_writes_the_report_contract(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["simulate", "--preset", "geneva", "--episodes", "3", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    for name in ("random", "nearest", "insertion", "matching"):
        assert name in table
    report = json.loads(out.read_text())
    assert report["scenario"] == "geneva"
    assert report["episodes"] == 3
    assert report["seeds"] == [0, 1, 2]
    for policy in report["policies"].values():
        for metric in METRIC_NAMES:
            low, high = policy[metric]["ci95"]
            assert low <= policy[metric]["mean"] <= high


def test_simulate_is_reproducible(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        main(
            [
                "simulate",
                "--policy",
                "random",
                "--episodes",
                "2",
                "--seed",
                "4",
                "--json",
                str(path),
            ]
        )
    assert json.loads(paths[0].read_text()) == json.loads(paths[1].read_text())


@pytest.mark.skipif(not CORDEAU_DIR.is_dir(), reason=f"no Cordeau instances at {CORDEAU_DIR}")
@pytest.mark.parametrize("path", sorted(CORDEAU_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_simulate_insertion_runs_on_every_cordeau_instance(path, tmp_path):
    out = tmp_path / "r.json"
    code = main(
        [
            "simulate",
            "--scenario",
            str(path),
            "--policy",
            "insertion",
            "--episodes",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["policies"]["insertion"]["completion_rate"]["mean"] > 0
