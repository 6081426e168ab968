"""The dispatch round: who answers it, what it answers, and bad plans refused by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, func, select

from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.replay import state_body
from rldispatch.service.decisions.snapshot import LiveDay, LiveState, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest
from rldispatch.service.log.round_states import resolve_round_request
from rldispatch.service.log.tables import NOTHING_ASSIGNED, round_states, suggestions
from tests.service.helpers import (
    ThreadedServer,
    auth,
    make_model_file,
    make_pairwise_model_file,
    round_in_process,
    switch_rl_on,
)

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)


def day_state(fleet: int = 10, decisions: int = 40) -> tuple[LiveState, LiveDay]:
    """A held-out day's state after ``decisions`` insertion decisions, as a request."""
    day = LiveDay.from_preset("geneva")
    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 7)
    from rldispatch.env import DispatchEnv

    env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=fleet))
    env.reset(options={"scenario": scenario})
    policy = make_baseline("insertion")
    for _ in range(decisions):
        env.step(policy.act(env))
    body = state_body(env.sim, day.start_min)
    return RoundRequest.model_validate(body).to_state(0.0, day), day


def test_fallback_round_is_the_heuristic_playing_the_state_until_nothing_is_left() -> None:
    state, day = day_state()
    answer = RLDispatchManager(None).dispatch_round(state)
    assert (answer.source, answer.reason) == ("fallback", "rl_disabled")
    live = live_env(state, day, EnvConfig(max_drivers=len(state.drivers)))
    expected = round_in_process(live, make_baseline("insertion").act)
    assert [(a.booking_id, a.driver_id) for a in answer.assignments] == expected
    assert expected  # the state had work to give
    given = {booking for booking, _ in expected}
    assert set(answer.waiting) == {b.id for b in state.open_bookings} - given
    for assignment in answer.assignments:
        assert assignment.pickup_in_min >= 0.0 and assignment.plan_index % 2 == 0


def test_plan_index_counts_the_stops_before_the_booking() -> None:
    state, day = day_state()
    answer = RLDispatchManager(None).dispatch_round(state)
    plans = {d.id: len(d.plan) for d in state.drivers}
    for assignment in answer.assignments:
        assert 0 <= assignment.plan_index <= 2 * plans[assignment.driver_id]
        plans[assignment.driver_id] += 1


def test_flat_model_too_small_for_the_fleet_falls_back(tmp_path: Path) -> None:
    path = make_model_file(tmp_path / "flat.safetensors", env_config=EnvConfig(max_drivers=4))
    state, _ = day_state()
    answer = RLDispatchManager(path, state=RL_ON).dispatch_round(state)
    assert (answer.source, answer.reason) == ("fallback", "fleet_too_large")
    assert answer.assignments


def test_shadow_round_serves_the_fallback_and_shows_the_models(tmp_path: Path) -> None:
    path = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    state, _ = day_state()
    manager = RLDispatchManager(path, state=ToggleState(shadow=True))
    answer = manager.dispatch_round(state)
    assert (answer.source, answer.reason, answer.shadow_reason) == ("fallback", "shadow_mode", None)
    rl = RLDispatchManager(path, state=RL_ON).dispatch_round(state)
    assert rl.source == "rl"
    assert answer.shadow_assignments == rl.assignments


def test_model_raising_mid_round_falls_back(tmp_path: Path) -> None:
    path = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    manager = RLDispatchManager(path, state=RL_ON)
    policy = manager._player().policy
    policy.q_function = lambda state: (_ for _ in ()).throw(RuntimeError("broken"))
    state, _ = day_state()
    answer = manager.dispatch_round(state)
    assert (answer.source, answer.reason) == ("fallback", "model_error")
    assert manager.statistics().errors == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with ThreadedServer(tmp_path_factory.mktemp("round")) as running:
        yield running


def test_round_over_http_answers_and_logs(server: ThreadedServer) -> None:
    state_body_ = state_body_of_day()
    response = httpx.post(f"{server.url}/rl/round", json=state_body_, headers=auth())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["source"] == "fallback" and answer["assignments"]
    assert answer["ended"] in ("wait", "no_feasible_assignment", "all_assigned")


def state_body_of_day() -> dict:
    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 3)
    from rldispatch.env import DispatchEnv

    env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=10))
    env.reset(options={"scenario": scenario})
    policy = make_baseline("insertion")
    for _ in range(30):
        env.step(policy.act(env))
    return state_body(env.sim, LiveDay.from_preset("geneva").start_min)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda plan: plan[::-1], "plan[", "drop-off"),
        (lambda plan: [{**plan[0], "window_closes_in_min": -1.0}, *plan[1:]], "plan", "0"),
        (lambda plan: [{**plan[0], "kind": "stop"}, *plan[1:]], "kind", ""),
        (
            lambda plan: [{k: v for k, v in plan[0].items() if k != "requested_in_min"}, *plan[1:]],
            "requested_in_min",
            "required for a pickup",
        ),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(
    server: ThreadedServer, change, where: str, message: str
) -> None:
    body = state_body_of_day()
    driver = next(i for i, d in enumerate(body["drivers"]) if d["plan"])
    body["drivers"][driver]["plan"] = change(body["drivers"][driver]["plan"])
    response = httpx.post(f"{server.url}/rl/round", json=body, headers=auth())
    assert response.status_code == 422
    answer = response.json()
    assert f"drivers.{driver}" in answer["message"] and where in answer["message"]
    assert message in answer["message"]


def test_a_booking_both_open_and_planned_is_refused(server: ThreadedServer) -> None:
    body = state_body_of_day()
    planned = next(d for d in body["drivers"] if d["plan"])["plan"][0]
    body["open_bookings"].append({**body["open_bookings"][0], "id": planned["booking_id"]})
    response = httpx.post(f"{server.url}/rl/round", json=body, headers=auth())
    assert response.status_code == 422
    assert "is also in open_bookings" in response.json()["message"]


def test_the_round_leaves_the_live_state_as_it_was() -> None:
    state, _ = day_state()
    before = replace(state)
    RLDispatchManager(None).dispatch_round(state)
    assert state == before and np.isfinite(state.minute_of_day)


def logged_rounds(url: str) -> list:
    """The log's rows, each round's request with its logged state put back."""
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                suggestions.c.booking_id,
                suggestions.c.driver_id,
                suggestions.c.source,
                suggestions.c.model_version,
                suggestions.c.request,
                suggestions.c.response,
            ).order_by(suggestions.c.id)
        ).all()
        query = select(round_states.c.state_key, round_states.c.state)
        states = {key: text for key, text in connection.execute(query)}
    engine.dispose()
    return [
        SimpleNamespace(**{**row._asdict(), "request": resolve_round_request(row.request, states)})
        for row in rows
    ]


def logged_state_keys(url: str) -> tuple[list[str], int]:
    """The state key each row names, and how many states are stored."""
    engine = create_engine(url)
    with engine.connect() as connection:
        requests = connection.execute(select(suggestions.c.request)).scalars().all()
        stored = connection.execute(select(func.count()).select_from(round_states)).scalar()
    engine.dispose()
    return [request["round"]["state_key"] for request in requests], int(stored)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_round_that_assigns_nothing_logs_its_state_once_and_counts_as_no_suggestion(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'log.sqlite3'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_schema_url")
    )
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    body = state_body_of_day()
    later = {  # its window opens beyond the lookahead: nobody is offered it now
        **body["open_bookings"][0],
        "id": "later-1",
        "requested_in_min": 400.0,
        "window_opens_in_min": 390.0,
        "window_closes_in_min": 430.0,
    }
    waiting_body = {**body, "open_bookings": [later]}
    with ThreadedServer(tmp_path / "data", model=model, database_url=url) as server:
        switch_rl_on(server.url)
        placed = httpx.post(f"{server.url}/rl/round", json=body, headers=auth(), timeout=30)
        waited = httpx.post(f"{server.url}/rl/round", json=waiting_body, headers=auth(), timeout=30)
        for _ in range(2):  # a second round of nothing: a second row
            httpx.post(f"{server.url}/rl/round", json=waiting_body, headers=auth(), timeout=30)
        server.app.state.service.store.flush()
        log = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()["log"]
        metrics = httpx.get(f"{server.url}/rl/metrics", headers=auth(), timeout=30).json()
    assigned = placed.json()["assignments"]
    assert placed.json()["source"] == "rl" and assigned
    assert waited.json()["source"] == "rl"
    assert (waited.json()["assignments"], waited.json()["waiting"]) == ([], ["later-1"])
    rows = logged_rounds(url)
    assert [row.booking_id for row in rows] == [a["booking_id"] for a in assigned] + [
        NOTHING_ASSIGNED
    ] * 3
    nothing = rows[-1]
    assert nothing.driver_id is None and nothing.source == "rl"
    assert nothing.request["state"]["open_bookings"][0]["id"] == "later-1"
    assert nothing.request["round"]["drivers"] == len(body["drivers"])
    keys, stored = logged_state_keys(url)
    assert len(set(keys[: len(assigned)])) == 1  # one round: one state for all its rows
    assert keys[-3] == keys[-2] == keys[-1]  # the same state again that day: stored once
    assert stored == 2
    assert nothing.response == {
        "assignments": [],
        "waiting": ["later-1"],
        "ended": waited.json()["ended"],
    }
    assert (log["suggestions"], log["rounds_without_assignment"]) == (len(assigned), 3)
    (version,) = metrics["ab"]["rl_by_model_version"]
    assert version["model_version"] == nothing.model_version
    assert version["suggestions"] == version["bookings"] == len(assigned)
    rl = metrics["ab"]["arms"]["rl"]  # the model's round assignments count for the rl arm
    assert rl["suggestions"] == rl["bookings"] == len(assigned)
    assert metrics["ab"]["arms"]["heuristic"]["suggestions"] == 0
    assert (metrics["suggestions"], metrics["rounds"]) == (0, 4)  # rounds apart
