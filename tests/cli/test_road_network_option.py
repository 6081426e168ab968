"""``--road-network FILE.osm.pbf`` on the verbs that play or solve days, and the noise
options on ``train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.cli import main
from rldispatch.domain import Driver, Scenario
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import GENEVA_CENTRE, make_preset
from rldispatch.scenarios.street_grid import write_street_grid


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    return write_street_grid(folder / "grid.osm.pbf", GENEVA_CENTRE, 14, 14, spacing_km=0.9)


def simulate(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    argv = ["simulate", "--policy", "insertion", "--episodes", "2", "--json", str(out)]
    assert main([*argv, *extra]) == 0
    return json.loads(out.read_text())


def test_simulate_plays_the_days_on_the_roads_and_says_so(tmp_path: Path, grid: Path) -> None:
    formula = simulate(tmp_path, "formula")
    roads = simulate(tmp_path, "roads", "--road-network", str(grid))
    assert "road_network" not in formula
    assert roads["road_network"] == str(grid)
    km = "distance_km"
    assert roads["policies"]["insertion"][km] != formula["policies"]["insertion"][km]


def test_a_day_outside_the_extract_is_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    far_away = write_street_grid(tmp_path / "far.osm.pbf", (47.37, 8.54), 4, 4, spacing_km=0.5)
    simulate(tmp_path, "far", "--road-network", str(far_away))
    err = capsys.readouterr().err
    assert "lie more than 1 km from every junction" in err
    assert "outside the extract" in err


def test_solve_solves_a_day_on_the_roads(tmp_path: Path, grid: Path) -> None:
    day = make_preset("geneva", 21)
    save_scenario(day, tmp_path / "day.json")
    out = tmp_path / "solved.json"
    argv = ["solve", "--scenario", str(tmp_path / "day.json"), "--time-limit", "2"]
    assert main([*argv, "--no-progress", "--road-network", str(grid), "--json", str(out)]) == 0
    solved = json.loads(out.read_text())
    assert solved["feasible"] and solved["notes"] == []
    assert solved["road_network"] == str(grid)


def test_train_trains_on_roads_under_noise_and_the_run_records_both(
    tmp_path: Path, grid: Path
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--days", "1", "--eval-days", "1", "--out", str(run), "--no-progress"]
    extra = ["--road-network", str(grid), "--travel-noise", "0.2", "--no-show-rate", "0.05"]
    assert main([*argv, *extra]) == 0
    saved = json.loads((run / "run.json").read_text())
    assert saved["days"]["source"] == "road_network"
    assert saved["days"]["road_network"] == str(grid)
    assert saved["env_config"]["uncertainty"]["travel_cv"] == 0.2
    assert saved["env_config"]["uncertainty"]["no_show_rate"] == 0.05
    model = load_learned_model(run / "final_model.safetensors")
    assert model.training_summary["road_network"] == str(grid)
    assert model.env_config.uncertainty.travel_cv == 0.2


def verb_argv(verb: str, tmp_path: Path) -> list[str]:
    model = save_untrained_model(tmp_path / "model.safetensors")
    day = tmp_path / "day.json"
    save_scenario(make_preset("geneva", 3), day)
    return {
        "simulate": ["simulate", "--episodes", "1"],
        "evaluate": ["evaluate", "--model", str(model), "--episodes", "1"],
        "compare": ["compare", "insertion", "nearest", "--episodes", "1"],
        "train": ["train", "--days", "1", "--out", str(tmp_path / "run"), "--no-progress"],
        "solve": ["solve", "--scenario", str(day), "--no-progress"],
        "serve": ["serve", "--data-dir", str(tmp_path / "data")],
    }[verb]


@pytest.mark.parametrize("verb", ["simulate", "evaluate", "compare", "train", "solve", "serve"])
@pytest.mark.parametrize("problem", ["missing", "broken"])
def test_a_missing_or_broken_road_network_is_one_line_naming_it_and_exit_2(
    verb: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{problem}.osm.pbf"
    if problem == "broken":
        path.write_bytes(b"\x00\x00\x00\x0cnot osm at all")
    assert main([*verb_argv(verb, tmp_path), "--road-network", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"--road-network {path}:" in err or f"road-network: {path}:" in err
    assert ("no such file" if problem == "missing" else "not a readable") in err


def test_a_scenario_naming_a_missing_road_network_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "day.json"
    save_scenario(make_preset("geneva", 3), scenario)
    data = json.loads(scenario.read_text())
    data["travel"]["road_network"] = "roads/town.osm.pbf"
    scenario.write_text(json.dumps(data))
    assert main(["simulate", "--scenario", str(scenario)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "travel.road_network: no such file 'roads/town.osm.pbf'" in err


def test_an_xy_day_is_refused_on_a_road_network(
    tmp_path: Path, grid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = Scenario(
        name="plain",
        coords="xy",
        horizon_min=60,
        drivers=(Driver(id="d1", start=(0.0, 0.0), shift=(0.0, 60.0)),),
        bookings=(),
    )
    save_scenario(day, tmp_path / "plain.json")
    argv = ["simulate", "--scenario", str(tmp_path / "plain.json"), "--road-network", str(grid)]
    assert main(argv) == 2
    assert "day plain has coords 'xy'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("trained_on_roads", "played_on_roads", "line"),
    [
        (True, False, "trained on the road network grid.osm.pbf, played on the travel formula"),
        (False, True, "trained on the travel formula, played on the road network grid.osm.pbf"),
        (True, True, None),
    ],
)
def test_evaluate_names_a_travel_other_than_the_models_training(
    trained_on_roads: bool,
    played_on_roads: bool,
    line: str | None,
    tmp_path: Path,
    grid: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = {"road_network": str(grid)} if trained_on_roads else {}
    model = save_untrained_model(tmp_path / "model.safetensors", training_summary=summary)
    out = tmp_path / "report.json"
    argv = ["evaluate", "--model", str(model), "--episodes", "1", "--json", str(out)]
    assert main([*argv, *(["--road-network", str(grid)] if played_on_roads else [])]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    name = load_learned_model(model).policy.name
    if line is None:
        assert "trained on the" not in printed
        assert "road_network_override" not in report
    else:
        assert f"{name}: {line}\n" in printed
        assert report["road_network_override"] == {name: line}
