"""Days replayed through a real server (the app under uvicorn, in a thread of the test's
process), the way docs/service.md tells an integrator to call it, decide what ``evaluate``
decides: for a pairwise model, a flat model and the heuristic, the same decision at every state
and the same figures of the day."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from rldispatch.agents.model_files import load_learned_model
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import replay_day
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.training.evaluation import evaluate_policy
from tests.service.helpers import (
    ADMIN_TOKEN,
    ThreadedServer,
    auth,
    make_model_file,
    make_pairwise_model_file,
)

DAYS = [make_preset("geneva", HELD_OUT_SEEDS.start + k) for k in range(2)]


def replay_through(server: ThreadedServer, policy, config: EnvConfig, rl: bool) -> list:
    """Each day replayed through ``POST /rl/round``; RL switched on first when ``rl``."""
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        if rl:
            toggled = client.post(
                "/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=auth(ADMIN_TOKEN)
            )
            assert toggled.status_code == 200, toggled.text

        def post_round(body: dict) -> dict:
            response = client.post("/rl/round", json=body, headers=auth())
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["source"] == ("rl" if rl else "fallback"), answer
            return answer

        start = LiveDay.from_preset("geneva").start_min
        return [replay_day(post_round, policy, day, config, start) for day in DAYS]


def check_parity(replayed: list, policy, config: EnvConfig) -> None:
    evaluated = evaluate_policy(policy, DAYS, config)
    for day, expected in zip(replayed, evaluated, strict=True):
        assert day.decisions == expected.decisions > 50
        assert day.differing == 0
        assert day.metrics.as_dict() == expected.as_dict()
    assert sum(day.rounds for day in replayed) < sum(day.decisions for day in replayed)


@pytest.mark.parametrize("kind", ["pairwise", "dqn"])
def test_learned_models_serve_what_evaluate_plays(tmp_path: Path, kind: str) -> None:
    if kind == "pairwise":
        path = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    else:
        path = make_model_file(tmp_path / "flat.safetensors", hidden_sizes=(32, 32), seed=3)
    learned = load_learned_model(path)
    config = learned.env_config_for(DAYS)
    with ThreadedServer(tmp_path / "data", model=path) as server:
        replayed = replay_through(server, learned.policy, config, rl=True)
    check_parity(replayed, load_learned_model(path).policy, config)


def test_the_heuristic_fallback_serves_what_evaluate_plays(tmp_path: Path) -> None:
    config = replace(EnvConfig(), max_drivers=len(DAYS[0].drivers))
    with ThreadedServer(tmp_path / "data") as server:
        replayed = replay_through(server, make_baseline("insertion"), config, rl=False)
    check_parity(replayed, make_baseline("insertion"), config)
