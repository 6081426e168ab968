"""``serve --road-network``: every request travels on the service's roads, and a day replayed
through HTTP takes ``evaluate``'s decisions on them."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.scenarios.presets import GENEVA_CENTRE, HELD_OUT_SEEDS, make_preset
from rldispatch.scenarios.street_grid import write_street_grid
from rldispatch.service.decisions.replay import replay_day
from rldispatch.training.evaluation import evaluate_policy
from tests.service.helpers import ThreadedServer, auth, make_pairwise_model_file, switch_rl_on


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairwise_model_file(tmp_path_factory.mktemp("model") / "pairwise.safetensors")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    return write_street_grid(folder / "grid.osm.pbf", GENEVA_CENTRE, 14, 14, spacing_km=0.9)


def test_a_road_day_replayed_through_the_service_takes_evaluates_decisions(
    model: Path, grid: Path, tmp_path: Path
) -> None:
    formula_day = make_preset("geneva", HELD_OUT_SEEDS.start + 1)
    day = replace(formula_day, travel=replace(formula_day.travel, road_network=str(grid)))
    learned = load_learned_model(model)
    config = learned.env_config_for([day])
    expected = evaluate_policy(learned.policy, [day], config)[0]
    on_formula = evaluate_policy(learned.policy, [formula_day], config)[0]
    assert expected.as_dict() != on_formula.as_dict()
    with (
        ThreadedServer(tmp_path, model=model, road_network_path=grid) as server,
        httpx.Client(base_url=server.url, timeout=60.0) as client,
    ):
        switch_rl_on(server.url)

        def post_round(body: dict) -> dict:
            response = client.post("/rl/round", json=body, headers=auth())
            assert response.status_code == 200, response.text
            return response.json()

        start_min = day.travel.start_hour * 60
        replayed = replay_day(post_round, learned.policy, day, config, start_min, True)
        status = client.get("/rl/status", headers=auth()).json()
    assert replayed.decisions == expected.decisions > 50
    assert replayed.differing == 0
    assert replayed.metrics.as_dict() == expected.as_dict()
    assert status["travel"]["served"]["road_network"] == str(grid)
    assert status["travel"]["trained_road_network"] is None
    assert status["travel"]["road_network_differing"] == (
        "trained on the travel formula, played on the road network grid.osm.pbf"
    )


def test_a_model_trained_on_roads_served_on_the_formula_is_stated(
    grid: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    summary = {"road_network": str(grid)}
    model = save_untrained_model(tmp_path / "roads.safetensors", training_summary=summary)
    line = "trained on the road network grid.osm.pbf, played on the travel formula"
    with caplog.at_level(logging.WARNING, logger="rldispatch"):
        with (
            ThreadedServer(tmp_path / "formula", model=model) as server,
            httpx.Client(base_url=server.url, timeout=60.0) as client,
        ):
            formula = client.get("/rl/status", headers=auth()).json()["travel"]
        with (
            ThreadedServer(tmp_path / "roads", model=model, road_network_path=grid) as server,
            httpx.Client(base_url=server.url, timeout=60.0) as client,
        ):
            roads = client.get("/rl/status", headers=auth()).json()["travel"]
    assert formula["trained_road_network"] == roads["trained_road_network"] == str(grid)
    assert formula["road_network_differing"] == line
    assert roads["road_network_differing"] is None
    assert [r.getMessage() for r in caplog.records].count(
        f"the model {load_learned_model(model).version} was {line}"
    ) == 1
