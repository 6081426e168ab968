"""The fleet's travel model in a request (``travel``) and in the service (``serve --travel``):
a request that carries its own is played with it, as ``evaluate`` plays a day of that city."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import main
from rldispatch.domain import TravelConfig, travel_to_dict
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import replay_day
from rldispatch.training.evaluation import evaluate_policy
from tests.service.helpers import ADMIN_TOKEN, ThreadedServer, auth, make_pairwise_model_file

OTHER_TRAVEL = TravelConfig(speed_kmh=30.0, detour=1.35, start_hour=7.0)
"""Another city's travel model: slower, longer roads, no rush hours, a day from 7:00."""
DAY = replace(make_preset("geneva", HELD_OUT_SEEDS.start), travel=OTHER_TRAVEL)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairwise_model_file(tmp_path_factory.mktemp("model") / "pairwise.safetensors")


def replayed(server: ThreadedServer, model: Path, with_travel: bool):
    learned = load_learned_model(model)
    config = learned.env_config_for([DAY])
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        toggled = client.post(
            "/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=auth(ADMIN_TOKEN)
        )
        assert toggled.status_code == 200, toggled.text

        def post_round(body: dict) -> dict:
            response = client.post("/rl/round", json=body, headers=auth())
            assert response.status_code == 200, response.text
            return response.json()

        day = replay_day(
            post_round, learned.policy, DAY, config, OTHER_TRAVEL.start_hour * 60, with_travel
        )
    return day, evaluate_policy(learned.policy, [DAY], config)[0]


def test_a_day_with_its_travel_block_takes_evaluates_decisions(model: Path, tmp_path: Path) -> None:
    with ThreadedServer(tmp_path, model=model) as server:
        day, expected = replayed(server, model, with_travel=True)
        status = httpx.get(f"{server.url}/rl/status", headers=auth()).json()
    assert day.decisions == expected.decisions > 50
    assert day.differing == 0
    assert day.metrics.as_dict() == expected.as_dict()
    assert status["travel"]["requests"] == {
        "requests_with_travel": day.rounds,
        "travel_differs_from_training": day.rounds,
    }
    assert status["travel"]["source"] == "preset geneva"


def test_without_its_travel_block_the_service_plays_its_own_travel_and_differs(
    model: Path, tmp_path: Path
) -> None:
    with ThreadedServer(tmp_path, model=model) as server:
        day, _ = replayed(server, model, with_travel=False)
    assert day.differing > 0


def test_serve_travel_sets_the_travel_model_a_request_without_one_plays(
    model: Path, tmp_path: Path
) -> None:
    travel_file = tmp_path / "travel.json"
    travel_file.write_text(json.dumps({"speed_kmh": 30, "detour": 1.35, "start_hour": 7}))
    with ThreadedServer(tmp_path, model=model, travel_path=travel_file) as server:
        day, expected = replayed(server, model, with_travel=False)
        status = httpx.get(f"{server.url}/rl/status", headers=auth()).json()
    assert day.differing == 0
    assert day.metrics.as_dict() == expected.as_dict()
    assert status["travel"]["source"] == "serve --travel"
    assert status["travel"]["served"] == travel_to_dict(OTHER_TRAVEL)
    assert status["travel"]["requests"]["requests_with_travel"] == 0


@pytest.mark.parametrize(
    ("travel", "field"),
    [
        ({"speed_kmh": 0}, "speed_kmh"),
        ({"speed_kmh": 1e-300}, "speed_kmh"),
        ({"hourly_speed_factor": [1e-300] * 24}, "hourly_speed_factor"),
        ({"detour": 0.5}, "detour"),
        ({"hourly_speed_factor": [1.0] * 23}, "hourly_speed_factor"),
        ({"speed": 30}, "speed"),
    ],
)
def test_a_bad_travel_block_is_refused_naming_its_field(
    model: Path, tmp_path: Path, travel: dict, field: str
) -> None:
    from tests.service.test_round import state_body_of_day

    with ThreadedServer(tmp_path, model=model) as server:
        body = {**state_body_of_day(), "travel": travel}
        response = httpx.post(f"{server.url}/rl/round", json=body, headers=auth())
    assert response.status_code == 422
    assert field in response.text


def test_serve_refuses_a_bad_travel_or_reward_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"speed_kmh": -3}))
    assert main(["serve", "--travel", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "travel.speed_kmh" in capsys.readouterr().err
    bad.write_text(json.dumps({"late_penalty": 3}))
    assert main(["serve", "--reward", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "did you mean 'late_pickup_penalty'" in capsys.readouterr().err


def test_status_states_the_served_weights_and_which_differ_from_the_models(
    model: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"late_pickup_penalty": 10}))
    with ThreadedServer(tmp_path, model=model, reward_path=weights) as server:
        status = httpx.get(f"{server.url}/rl/status", headers=auth()).json()
    assert status["reward"]["source"] == "serve --reward"
    assert status["reward"]["served"]["late_pickup_penalty"] == 10.0
    assert status["reward"]["model"]["late_pickup_penalty"] == 5.0
    assert status["reward"]["differing"] == ["late_pickup_penalty 5 -> 10"]
