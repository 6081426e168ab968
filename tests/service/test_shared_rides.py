"""Plans of stops through the API: shared rides, places by kind, ride limits, breaks and
passengers on board, over a real HTTP server (the app under uvicorn in a thread of the test's
process); and the state such a request describes is the simulator's at every decision of a
played patient-transport day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import replay_day, state_body
from rldispatch.service.decisions.snapshot import LiveDay, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import evaluate_policy
from tests.service.helpers import ThreadedServer, auth, make_pairwise_model_file, switch_rl_on

CENTRE = {"lat": 46.2, "lon": 6.14}


@pytest.mark.parametrize(("seed", "policy"), [(3, "insertion"), (4, "matching")])
def test_request_state_equals_the_simulators_at_every_decision(seed: int, policy: str) -> None:
    day = LiveDay.from_preset("geneva-mix")
    scenario = make_preset("geneva-mix", seed)
    config = EnvConfig(max_drivers=len(scenario.drivers))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset(options={"scenario": scenario})
    player = make_baseline(policy)
    decisions = carried = with_breaks = 0
    terminated = False
    while not terminated:
        body = state_body(env.sim, day.start_min)
        state = RoundRequest.model_validate(body).to_state(0.0, day)
        assert state.plans_of_stops and state.shared_rides
        live = live_env(state, day, config)
        assert np.array_equal(live.env.observation(), env.observation())
        assert np.array_equal(live.env.action_masks(), env.action_masks())
        ids = [scenario.bookings[b].id for b in env.visible]
        assert [live.booking_ids[b] for b in live.env.visible] == ids
        ours, theirs = live.env.table, env.table
        assert np.array_equal(ours.feasible, theirs.feasible)
        assert np.array_equal(ours.position, theirs.position)
        assert np.array_equal(ours.dropoff_position, theirs.dropoff_position)
        feasible = theirs.feasible
        assert np.allclose(ours.cost[feasible], theirs.cost[feasible], 0, 1e-9)
        carried += sum(bool(b) for b in env.sim.onboard_bookings)
        with_breaks += any(stop["kind"] == "break" for d in body["drivers"] for stop in d["plan"])
        decisions += 1
        _, _, terminated, _, _ = env.step(player.act(env))
    # real decisions, with passengers on board and breaks in the plans restored
    assert decisions > 50 and carried > 0 and with_breaks > 0


def driver(identifier: str, capacity: Any, plan: list[dict], **more: Any) -> dict[str, Any]:
    return {
        "id": identifier,
        "position": {"lat": 46.21, "lon": 6.14},
        "shift_starts_in_min": -60,
        "shift_ends_in_min": 400,
        "capacity": capacity,
        "plan": plan,
        **more,
    }


def booking(identifier: str, lat: float, lon: float, opens: float = 10, **more: Any) -> dict:
    return {
        "id": identifier,
        "pickup": {"lat": lat, "lon": lon},
        "dropoff": {"lat": 46.19, "lon": 6.15},
        "requested_in_min": opens + 10,
        "window_opens_in_min": opens,
        "window_closes_in_min": opens + 40,
        **more,
    }


ON_BOARD = {
    "kind": "dropoff",
    "booking_id": "p-1",
    "location": {"lat": 46.19, "lon": 6.151},
    "load": {"seated": 2},
    "max_ride_min": 60,
    "picked_up_in_min": -5,
}
BREAK = {"kind": "break", "earliest_in_min": 150, "latest_in_min": 250, "duration_min": 30}


def shared_state() -> dict[str, Any]:
    """A minibus carrying two seated passengers to the clinic, a van with a wheelchair place
    and a car; two seated bookings near the minibus and a wheelchair user."""
    return {
        "shared_rides": True,
        "minute_of_day": 540,
        "area_centre": CENTRE,
        "drivers": [
            driver("bus", {"seated": 6}, [ON_BOARD, BREAK]),
            driver(
                "van",
                {"seated": 4, "wheelchair": 1},
                [BREAK],
                position={"lat": 46.23, "lon": 6.10},
            ),
            driver("car", 3, [], position={"lat": 46.17, "lon": 6.18}),
        ],
        "open_bookings": [
            booking("b-1", 46.211, 6.141),
            booking("b-2", 46.212, 6.142, opens=12),
            booking("w-1", 46.21, 6.14, opens=15, load={"wheelchair": 1, "seated": 1}),
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    data = tmp_path_factory.mktemp("shared")
    with ThreadedServer(data) as process:
        yield process


def post(server: ThreadedServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers=auth(), timeout=60)


def test_a_round_shares_the_minibus_and_keeps_the_wheelchair_user_to_the_van(
    server: ThreadedServer,
) -> None:
    response = post(server, "/rl/round", shared_state())
    assert response.status_code == 200, response.text
    answer = response.json()
    given = {a["booking_id"]: a for a in answer["assignments"]}
    assert set(given) == {"b-1", "b-2", "w-1"}
    assert given["w-1"]["driver_id"] == "van"  # the only vehicle with a wheelchair place
    # the minibus picks both up on its way while its passengers stay on board: shared rides
    assert given["b-1"]["driver_id"] == given["b-2"]["driver_id"] == "bus"
    for assignment in answer["assignments"]:
        assert assignment["dropoff_plan_index"] > assignment["plan_index"]
    bus = [a for a in answer["assignments"] if a["driver_id"] == "bus"]
    assert bus[0]["plan_index"] == 0  # picked up before the passenger on board is dropped


def test_the_dispatchers_page_draws_the_plans_of_stops(server: ThreadedServer) -> None:
    assert post(server, "/rl/round", shared_state()).status_code == 200
    response = httpx.get(f"{server.url}/ui/state", headers=auth(), timeout=60)
    assert response.status_code == 200, response.text
    drivers = {d["id"]: d for d in response.json()["fleet"]["drivers"]}
    assert drivers["van"]["capacity"] == {"seated": 4, "wheelchair": 1}
    bus = drivers["bus"]["stops"]
    onboard = [s for s in bus if s.get("onboard")]
    assert [s["booking_id"] for s in onboard] == ["p-1"]
    assert {s["booking_id"] for s in bus if s["kind"] == "pickup"} == {"b-1", "b-2"}


def test_without_shared_rides_one_booking_rides_at_a_time(server: ThreadedServer) -> None:
    state = shared_state()
    state["shared_rides"] = False
    state["drivers"][0]["plan"] = [{**ON_BOARD, "load": 1}, BREAK]
    response = post(server, "/rl/round", state)
    assert response.status_code == 200, response.text
    for assignment in response.json()["assignments"]:
        assert assignment["dropoff_plan_index"] == assignment["plan_index"] + 1
        if assignment["driver_id"] == "bus":  # after the passenger on board is dropped
            assert assignment["plan_index"] >= 1


def test_a_suggestion_answers_the_pickup_and_drop_off_positions(server: ThreadedServer) -> None:
    state = shared_state()
    wheelchair = state["open_bookings"].pop()
    response = post(server, "/rl/suggest", {**state, "booking": wheelchair})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["driver_id"] == "van"
    assert answer["dropoff_plan_index"] > answer["plan_index"]
    assert [c["driver_id"] for c in answer["candidates"]] == ["van"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["open_bookings"][0].update(load={"wheelchairs": 1}),
            "unknown kind of place (did you mean 'wheelchair'?)",
        ),
        (lambda s: s["drivers"][2].update(capacity={"seated": 0}), "at least one place"),
        (lambda s: s["drivers"][0]["plan"][1].pop("duration_min"), "duration_min: required"),
        (
            lambda s: s["drivers"][0]["plan"][1].update(latest_in_min=100),
            "latest_in_min: the break's window closes before it opens",
        ),
        (
            lambda s: s["drivers"][0]["plan"][0].pop("picked_up_in_min"),
            "drivers[0].plan[0].picked_up_in_min: required with max_ride_min",
        ),
        (
            lambda s: s["drivers"][0]["plan"][0].update(done_in_min=5),
            "drivers[0].plan[0].done_in_min: not in a plan of stops",
        ),
        (
            lambda s: s["drivers"][0]["plan"][1].update(booking_id="b-9"),
            "booking_id: not for a break",
        ),
        (
            lambda s: s.update(shared_rides=False),
            "drivers[0].plan[0]: two bookings on board at once",
        ),
        (
            lambda s: s["drivers"][1].update(plan=[dict(BREAK)] * 11),
            "plan: 11 breaks, at most 10 a shift",
        ),
    ],
)
def test_bad_plans_of_stops_are_refused_naming_the_field(
    server: ThreadedServer, change: Any, message: str
) -> None:
    state = shared_state()
    second = {**ON_BOARD, "booking_id": "p-2", "load": 1}
    state["drivers"][0]["plan"] = [dict(ON_BOARD), dict(BREAK), second]
    change(state)
    response = post(server, "/rl/round", state)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_interleaved_stops_without_the_new_keys_are_refused_as_before(
    server: ThreadedServer,
) -> None:
    pickup = {
        "kind": "pickup",
        "location": {"lat": 46.2, "lon": 6.15},
        "requested_in_min": 25,
        "window_opens_in_min": 15,
        "window_closes_in_min": 50,
    }
    dropoff = {"kind": "dropoff", "location": {"lat": 46.22, "lon": 6.13}}
    plan = [
        {**pickup, "booking_id": "a"},
        {**pickup, "booking_id": "b"},
        {**dropoff, "booking_id": "a"},
        {**dropoff, "booking_id": "b"},
    ]
    body = {"drivers": [driver("d1", 4, plan)], "minute_of_day": 540}
    refused = post(server, "/rl/round", body)
    assert refused.status_code == 422
    assert "one booking at a time; shared rides: send shared_rides" in refused.text
    accepted = post(server, "/rl/round", {**body, "shared_rides": True})
    assert accepted.status_code == 200, accepted.text


def test_a_pairwise_model_answers_a_round_of_plans_of_stops(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    with ThreadedServer(tmp_path / "data", model=model) as process:
        switch_rl_on(process.url)
        answer = post(process, "/rl/round", shared_state()).json()
        assert (answer["source"], answer["reason"]) == ("rl", None)
        assigned = {a["booking_id"]: a["driver_id"] for a in answer["assignments"]}
        assert set(assigned) == {"b-1", "b-2", "w-1"} and assigned["w-1"] == "van"
        metrics = httpx.get(f"{process.url}/rl/metrics", headers=auth(), timeout=30).json()
        assert metrics["errors"] == 0


def test_a_shared_ride_day_replayed_through_the_server_decides_what_evaluate_decides(
    server: ThreadedServer,
) -> None:
    scenario = make_preset("geneva-mix", HELD_OUT_SEEDS.start)
    config = EnvConfig(max_drivers=len(scenario.drivers))
    start = LiveDay.from_preset("geneva-mix").start_min
    with httpx.Client(base_url=server.url, timeout=60.0, headers=auth()) as client:

        def post_round(body: dict) -> dict:
            response = client.post("/rl/round", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        day = replay_day(post_round, make_baseline("insertion"), scenario, config, start)
    (expected,) = evaluate_policy(make_baseline("insertion"), [scenario], config)
    assert day.decisions == expected.decisions > 50
    assert day.differing == 0
    assert day.metrics.as_dict() == expected.as_dict()
    assert day.metrics.shared_ride_share > 0.2 and day.metrics.occupancy > 1.0
    check = check_played_day(day.sim)
    assert check.ok, check.problems
