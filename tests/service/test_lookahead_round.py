"""Answers of a pairwise model that look ahead (``serve --lookahead``): a round's choices and a
suggestion's driver are the expert's on the live day, a budget passes over the candidates it
has no time for, and the status says how they look ahead."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.service.config import Lookahead
from rldispatch.service.decisions.manager import LiveRequest, RLDispatchManager
from rldispatch.service.decisions.snapshot import LiveDay, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest
from tests.service.helpers import (
    ServerProcess,
    ThreadedServer,
    auth,
    make_model_file,
    make_pairwise_model_file,
    round_in_process,
    round_looking_ahead_over_http,
)
from tests.service.test_round import RL_ON, day_state, state_body_of_day

TINY_BUDGET_S = 1e-9
"""Spent by the first rollout of every decision."""


def expert_round(model: Path, state, day, expert_of) -> list[tuple[str, str]]:
    """The assignments of a round played in this process by ``expert_of(policy)``'s choices
    (or the network's when it is None) on the request's live day."""
    manager = RLDispatchManager(model)
    live = live_env(state, day, manager.rl_config(len(state.drivers)))
    policy = PairwisePolicy.from_file(model)
    expert = expert_of(policy)
    if expert is None:
        return round_in_process(live, policy.act)

    def act(env) -> int:
        features = policy.state(env)
        return features.action(expert.choose(env, features))

    return round_in_process(live, act)


def answered(answer) -> list[tuple[str, str]]:
    return [(a.booking_id, a.driver_id) for a in answer.assignments]


def test_a_lookahead_round_is_the_lookahead_expert_on_the_live_day(tmp_path: Path) -> None:
    # Seed 1: a network whose round on this day the lookahead changes (checked below).
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors", seed=1)
    state, day = day_state(decisions=0)
    manager = RLDispatchManager(model, state=RL_ON, lookahead=Lookahead(3, None))
    answer = manager.dispatch_round(state)
    assert answer.source == "rl" and answer.reason is None
    looked = expert_round(
        model, state, day, lambda policy: LookaheadExpert(policy.q_function, 3, 6)
    )
    assert answered(answer) == looked
    plain = RLDispatchManager(model, state=RL_ON).dispatch_round(state)
    assert answered(plain) == expert_round(model, state, day, lambda policy: None)
    assert answered(plain) != looked  # the lookahead changed what the round gives
    assert manager.lookahead_status() == {
        "candidates": 3,
        "budget_ms": None,
        "decisions_cut_short": 0,
    }


def test_a_spent_budget_leaves_the_network_s_choice(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    state, _ = day_state(decisions=0)
    hurried = RLDispatchManager(model, state=RL_ON, lookahead=Lookahead(3, TINY_BUDGET_S))
    plain = RLDispatchManager(model, state=RL_ON)
    answer = hurried.dispatch_round(state)
    assert answered(answer) == answered(plain.dispatch_round(state))
    assert hurried.lookahead_status()["decisions_cut_short"] >= len(answer.assignments) > 0


def test_a_flat_model_s_round_does_not_look_ahead(tmp_path: Path) -> None:
    from rldispatch.env import EnvConfig

    model = make_model_file(tmp_path / "flat.safetensors", env_config=EnvConfig(max_drivers=10))
    state, _ = day_state(decisions=0)
    looking = RLDispatchManager(model, state=RL_ON, lookahead=Lookahead(3, None))
    answer = looking.dispatch_round(state)
    assert answer.source == "rl"
    assert answered(answer) == answered(RLDispatchManager(model, state=RL_ON).dispatch_round(state))


def test_a_round_over_http_looks_ahead_and_the_status_says_so(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "models" / "pairwise.safetensors")
    body = state_body_of_day()
    state = RoundRequest.model_validate(body).to_state(0.0, LiveDay.from_preset("geneva"))
    lookahead = Lookahead(2, None)
    expected = RLDispatchManager(model, state=RL_ON, lookahead=lookahead).dispatch_round(state)
    served, status = round_looking_ahead_over_http(tmp_path / "data", model, body, 2, 60)
    assert served["source"] == "rl"
    got = [(a["booking_id"], a["driver_id"]) for a in served["assignments"]]
    assert got == answered(expected) and got
    assert status["lookahead"] == {"candidates": 2, "budget_ms": None, "decisions_cut_short": 0}


@pytest.mark.slow
def test_serve_hands_the_lookahead_to_every_worker(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "models" / "pairwise.safetensors")
    options = ("--lookahead", "3", "--lookahead-budget-ms", "250", "--workers", "2")
    with ServerProcess(tmp_path / "data", model=model, extra_args=options) as server:
        seen = {}
        for _ in range(40):  # until both workers have answered
            status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
            seen[status["worker_pid"]] = status["lookahead"]
            if len(seen) == 2:
                break
    assert len(seen) == 2
    for lookahead in seen.values():
        assert lookahead == {"candidates": 3, "budget_ms": 250.0, "decisions_cut_short": 0}


@pytest.mark.parametrize(
    ("option", "value"), [("--lookahead", "-1"), ("--lookahead-budget-ms", "-5")]
)
def test_serve_refuses_a_bad_lookahead_by_name(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rldispatch.cli import main

    code = main(["serve", "--data-dir", str(tmp_path), option, value])
    assert code == 2
    assert option.lstrip("-") in capsys.readouterr().err


def test_status_without_lookahead_has_none(tmp_path: Path) -> None:
    with ThreadedServer(tmp_path / "data") as server:
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
    assert status["lookahead"] is None


def test_a_suggestion_that_looks_ahead_takes_the_candidate_whose_rollout_ends_best(
    tmp_path: Path,
) -> None:
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    state, day = day_state(decisions=0)
    looking = RLDispatchManager(model, state=RL_ON, lookahead=Lookahead(3, None))
    plain = RLDispatchManager(model, state=RL_ON)
    policy = PairwisePolicy.from_file(model)
    expert = LookaheadExpert(policy.q_function, 3, 6)
    changed = suggested = 0
    for booking in state.open_bookings[:8]:
        request = LiveRequest(booking, state)
        answer, network = looking.suggest(request), plain.suggest(request)
        assert (answer.source, answer.reason) == (network.source, network.reason)
        if network.source != "rl":  # the network waits, or cannot see the booking
            continue
        suggested += 1
        ranked = [c.driver_id for c in network.candidates]
        assert [c.driver_id for c in answer.candidates] == ranked  # still by the network's Q
        asked = state.with_booking_first(booking)
        config = looking.rl_config(len(asked.drivers), len(asked.open_bookings))
        live = live_env(asked, day, config, one_decision=True)
        slot = int(np.flatnonzero(live.env.visible == live.booking_ids.index(booking.id))[0])
        features = policy.state(live.env)
        mine = np.flatnonzero(features.pair_slot == slot)
        pair_of = {live.driver_ids[features.pair_driver[p]]: p for p in mine}
        looked = np.array([pair_of[driver] for driver in ranked[:3]])
        rewards = expert.rollout_rewards(live.env, features, looked)
        assert answer.driver_id == ranked[int(np.argmax(rewards))]
        assert answer.chosen is not None and answer.chosen.driver_id == answer.driver_id
        changed += answer.driver_id != network.driver_id
    assert suggested >= 4 and changed > 0


def test_on_onnx_runtime_a_round_looks_ahead_as_on_numpy(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    state, _ = day_state(decisions=0)
    rounds = [
        RLDispatchManager(
            model, runtime=runtime, state=RL_ON, lookahead=Lookahead(3, None)
        ).dispatch_round(state)
        for runtime in ("onnx", "numpy")
    ]
    assert all(r.source == "rl" for r in rounds)
    assert answered(rounds[0]) == answered(rounds[1]) and answered(rounds[0])
