"""A request's budget: rounds end ``budget`` with what they made, suggestions fall back,
rollouts stop mid-way, a client that leaves stops its work; the lanes answer 503 when full
and ``/healthz`` answers while a large round runs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.service.config import Lookahead, ServiceConfig
from rldispatch.service.decisions.manager import LiveRequest, RLDispatchManager
from rldispatch.service.decisions.request_budget import RequestBudget
from rldispatch.service.decisions.snapshot import live_env
from rldispatch.service.decisions.workload import Busy, Lane
from tests.service.helpers import ThreadedServer, auth, make_pairwise_model_file, switch_rl_on
from tests.service.test_round import RL_ON, day_state


class CountedBudget(RequestBudget):
    """Spent after it has been asked ``checks`` times: a deadline that falls at a known point."""

    def __init__(self, checks: int) -> None:
        super().__init__(None)
        self.left = checks

    def spent(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().spent()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_pairwise_model_file(tmp_path / "models" / "pairwise.safetensors")


def pairs(answer) -> list[tuple[str, str]]:
    return [(a.booking_id, a.driver_id) for a in answer.assignments]


def test_a_round_stopped_before_it_starts_assigns_nothing_and_says_budget(model: Path) -> None:
    state, _ = day_state(decisions=0)
    budget = RequestBudget(60.0)
    budget.stop("shutdown")
    answer = RLDispatchManager(model, state=RL_ON).dispatch_round(state, budget)
    assert (answer.source, answer.ended, answer.assignments) == ("rl", "budget", ())
    assert set(answer.waiting) == {b.id for b in state.open_bookings}


def test_a_round_at_its_deadline_keeps_the_assignments_made_until_then(model: Path) -> None:
    state, _ = day_state(decisions=0)
    manager = RLDispatchManager(model, state=RL_ON)
    whole = manager.dispatch_round(state)
    assert len(whole.assignments) >= 3 and whole.ended != "budget"
    cut = manager.dispatch_round(state, CountedBudget(2))  # two decisions, then the deadline
    assert cut.ended == "budget"
    assert pairs(cut) == pairs(whole)[:2]
    assert set(cut.waiting) == {b.id for b in state.open_bookings} - {b for b, _ in pairs(cut)}


def test_the_fallback_s_round_stops_at_the_deadline_too(model: Path) -> None:
    state, _ = day_state(decisions=0)
    answer = RLDispatchManager(None).dispatch_round(state, CountedBudget(1))
    assert (answer.source, answer.ended, len(answer.assignments)) == ("fallback", "budget", 1)


def test_a_rollout_stops_mid_way_and_the_decision_is_the_network_s(model: Path) -> None:
    state, day = day_state(decisions=0)
    manager = RLDispatchManager(model)
    live = live_env(state, day, manager.rl_config(len(state.drivers)))
    policy = PairwisePolicy.from_file(model)
    expert = LookaheadExpert(policy.q_function, 3, 6)
    features = policy.state(live.env)
    best, order = expert.ranked(features)
    assert expert.rollout_reward(live.env, features, int(order[0])) is not None
    steps = iter(range(5))
    expert.should_stop = lambda: next(steps, None) is None  # five steps, then stop
    assert expert.rollout_reward(live.env, features, int(order[0])) is None
    steps = iter(range(5))
    assert expert.choose(live.env, features) == best
    assert expert.cut_short == 1


def test_a_suggestion_whose_budget_is_spent_falls_back_with_its_reason(model: Path) -> None:
    state, _ = day_state(decisions=0)
    manager = RLDispatchManager(model, state=RL_ON, lookahead=Lookahead(3, None))
    booking = state.open_bookings[0]
    budget = RequestBudget(60.0)
    budget.stop("client_disconnected")
    answer = manager.suggest(LiveRequest(booking, state), budget)
    heuristic = RLDispatchManager(None).suggest(LiveRequest(booking, state))
    assert (answer.source, answer.reason) == ("fallback", "request_budget")
    assert answer.driver_id == heuristic.driver_id
    assert manager.statistics().fallbacks["request_budget"] == 1


def test_the_request_budget_is_a_positive_number_of_milliseconds() -> None:
    assert ServiceConfig.from_env({}).request_budget_ms == 10_000.0
    assert ServiceConfig.from_env({"RLDISPATCH_REQUEST_BUDGET_MS": "250"}).request_budget_ms == 250
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(ValueError, match="request-budget-ms"):
            ServiceConfig.from_env({}, request_budget_ms=bad)


def test_a_full_lane_answers_503_with_retry_after_at_once() -> None:
    release = threading.Event()

    async def scenario() -> tuple[Busy, Busy, str]:
        lane = Lane("large", running=1, waiting=1)
        first = asyncio.create_task(
            lane.run(RequestBudget(30.0), lambda: release.wait(30) and "done", False)
        )
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(lane.run(RequestBudget(0.2), lambda: "late", False))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as full:
            await lane.run(RequestBudget(30.0), lambda: "never", False)
        with pytest.raises(Busy) as waited:
            await queued  # its budget ran out in the queue
        release.set()
        return full.value, waited.value, await first

    full, waited, first = asyncio.run(scenario())
    assert first == "done"
    for busy in (full, waited):
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
    assert "busy" in full.detail


def fresh_day_body() -> dict:
    """A held-out day at its start, every booking open: a long round with the lookahead."""
    from rldispatch.env import DispatchEnv, EnvConfig
    from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
    from rldispatch.service.decisions.replay import state_body
    from rldispatch.service.decisions.snapshot import LiveDay

    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 3)
    env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=30))
    env.reset(options={"scenario": scenario})
    return state_body(env.sim, LiveDay.from_preset("geneva").start_min)


def test_a_round_over_http_past_its_budget_ends_budget(model: Path, tmp_path: Path) -> None:
    body = fresh_day_body()
    options = {"lookahead": 3, "lookahead_budget_ms": 0, "request_budget_ms": 300}
    with ThreadedServer(tmp_path / "data", model=model, **options) as server:
        switch_rl_on(server.url)
        answer = httpx.post(f"{server.url}/rl/round", json=body, headers=auth(), timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ended"] == "budget" and answer.json()["source"] == "rl"


def test_healthz_answers_while_a_round_runs_and_a_client_that_leaves_stops_it(
    model: Path, tmp_path: Path
) -> None:
    body = fresh_day_body()
    options = {"lookahead": 3, "lookahead_budget_ms": 0, "request_budget_ms": 600_000}
    with ThreadedServer(tmp_path / "data", model=model, **options) as server:
        switch_rl_on(server.url)
        lanes = server.app.state.lanes
        left: list[Exception] = []

        def leave_early() -> None:
            try:
                httpx.post(f"{server.url}/rl/round", json=body, headers=auth(), timeout=0.5)
            except httpx.ReadTimeout as error:
                left.append(error)

        thread = threading.Thread(target=leave_early)
        thread.start()
        while lanes.large.in_lane + lanes.small.in_lane == 0 and thread.is_alive():
            time.sleep(0.005)
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        thread.join()
        deadline = time.monotonic() + 120
        while lanes.large.in_lane + lanes.small.in_lane and time.monotonic() < deadline:
            time.sleep(0.02)
        store = server.app.state.service.store
        store.flush()
        written = store.counts()["written"]
        running = lanes.large.in_lane + lanes.small.in_lane
    assert health.status_code == 200
    assert left, "the round answered within 0.5 s: no client left"
    assert running == 0 and lanes.clients_gone == 1  # its work stopped
    assert written == 0  # an answer nobody read is not logged
