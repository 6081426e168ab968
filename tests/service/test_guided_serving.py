"""Serving a guided-reopt model: rounds and suggestions over HTTP, its ONNX refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from rldispatch.agents.guided_reopt.lookahead import GuidedLookaheadPolicy
from rldispatch.agents.guided_reopt.model_file import (
    GuidedReoptMetadata,
    load_guided_model,
    save_guided_model,
)
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.onnx_files import export_onnx
from rldispatch.agents.serving import ModelLoadError
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.config import Lookahead
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.replay import state_body
from rldispatch.service.decisions.snapshot import LiveDay, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest
from tests.service.helpers import (
    ThreadedServer,
    auth,
    round_in_process,
    round_looking_ahead_over_http,
    suggest_body,
    switch_rl_on,
)
from tests.service.test_round import RL_ON, state_body_of_day


@pytest.fixture(scope="module")
def guided_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    network = TermNetwork(hidden=8)
    with torch.no_grad():
        network.prize[-1].weight.normal_(0.0, 0.05)
    metadata = GuidedReoptMetadata(hidden=8, env_config={"max_drivers": 10})
    return save_guided_model(
        tmp_path_factory.mktemp("guided") / "guided.safetensors", network, metadata
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, guided_path: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("guided-server"), model=guided_path) as server:
        switch_rl_on(server.url)
        yield server


def round_body() -> dict:
    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 3)
    env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=10))
    env.reset(options={"scenario": scenario})
    policy = make_baseline("insertion")
    for _ in range(30):
        env.step(policy.act(env))
    return state_body(env.sim, LiveDay.from_preset("geneva").start_min)


def test_a_guided_model_answers_rounds_and_suggestions_over_http(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        status = client.get("/rl/status", headers=auth()).json()["model"]
        assert (status["loaded"], status["kind"], status["max_drivers"]) == (
            True,
            "guided-reopt",
            None,
        )
        played = client.post("/rl/round", json=round_body(), headers=auth())
        assert played.status_code == 200, played.text
        answer = played.json()
        assert answer["source"] == "rl" and answer["assignments"], answer
        body = suggest_body(booking_id="g1", n_drivers=6, seed=2)
        suggested = client.post("/rl/suggest", json=body, headers=auth())
        assert suggested.status_code == 200, suggested.text
        answer = suggested.json()
        assert answer["model_version"].startswith("guided-")
        assert answer["source"] == "rl" or answer["reason"] == "rl_waited", answer
        if answer["source"] == "rl":
            assert answer["driver_id"] == answer["candidates"][0]["driver_id"]


def test_onnx_export_of_a_guided_model_is_refused_in_one_line(guided_path, tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="guided-reopt model") as error:
        export_onnx(guided_path, tmp_path / "guided.onnx")
    assert "\n" not in str(error.value)


def test_a_guided_round_that_looks_ahead_is_the_look_ahead_on_the_live_day(
    guided_path: Path, tmp_path: Path
) -> None:
    body = state_body_of_day()
    day = LiveDay.from_preset("geneva")
    state = RoundRequest.model_validate(body).to_state(0.0, day)
    manager = RLDispatchManager(guided_path, state=RL_ON, lookahead=Lookahead(2, None))
    answer = manager.dispatch_round(state)
    assert answer.source == "rl" and answer.reason is None
    model = load_guided_model(guided_path)

    def played_here(policy) -> list[tuple[str, str]]:
        live = live_env(state, day, manager.rl_config(len(state.drivers)))
        return round_in_process(live, policy.act)

    def guided() -> GuidedReoptPolicy:
        return GuidedReoptPolicy(model.network, horizon_min=model.metadata.horizon_min)

    got = [(a.booking_id, a.driver_id) for a in answer.assignments]
    assert got == played_here(GuidedLookaheadPolicy(guided(), 2)) and got
    plain = RLDispatchManager(guided_path, state=RL_ON).dispatch_round(state)
    assert [(a.booking_id, a.driver_id) for a in plain.assignments] != got  # it looked ahead
    served, status = round_looking_ahead_over_http(tmp_path / "data", guided_path, body, 2, 120)
    assert [(a["booking_id"], a["driver_id"]) for a in served["assignments"]] == got
    assert status["lookahead"] == {"candidates": 2, "budget_ms": None, "decisions_cut_short": 0}
    hurried = RLDispatchManager(guided_path, state=RL_ON, lookahead=Lookahead(2, 1e-9))
    rushed = hurried.dispatch_round(state)
    # Every decision's budget is spent at once: its re-plan keeps its warm start (the bookings
    # it never weighed go to cheapest insertion) and no copy is played on.
    stopped = guided()
    stopped.replan_deadline = 0.0
    assert [(a.booking_id, a.driver_id) for a in rushed.assignments] == played_here(stopped)
    assert stopped.cut_short_replans > 0
    assert hurried.lookahead_status()["decisions_cut_short"] > 0
