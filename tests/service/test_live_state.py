"""A simulated day's state sent as a request gives the env state the policy saw there."""

from __future__ import annotations

import numpy as np
import pytest

from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.decisions.replay import state_body
from rldispatch.service.decisions.snapshot import LiveDay, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest

FEATURES = ("drivers", "bookings", "pairs", "globals", "pair_driver", "pair_slot")


@pytest.mark.parametrize(("preset", "policy"), [("geneva", "insertion"), ("classic", "matching")])
def test_request_state_equals_the_simulators_at_every_decision(preset: str, policy: str) -> None:
    day = LiveDay.from_preset(preset)
    scenario = make_preset(preset, 10_001)
    config = EnvConfig(max_drivers=len(scenario.drivers))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset(options={"scenario": scenario})
    player = make_baseline(policy)
    simulated, served = FeatureBuilder(6), FeatureBuilder(6)
    decisions = planned = 0
    terminated = False
    while not terminated:
        body = state_body(env.sim, day.start_min)
        state = RoundRequest.model_validate(body).to_state(0.0, day)
        live = live_env(state, day, config)
        assert np.array_equal(live.env.observation(), env.observation())
        assert np.array_equal(live.env.action_masks(), env.action_masks())
        ids = [scenario.bookings[b].id for b in env.visible]
        assert [live.booking_ids[b] for b in live.env.visible] == ids
        # Times travel as minutes from now: the same to a few ulps, the same decisions.
        assert np.array_equal(live.env.table.feasible, env.table.feasible)
        assert np.array_equal(live.env.table.position, env.table.position)
        feasible = env.table.feasible
        assert np.allclose(live.env.table.cost[feasible], env.table.cost[feasible], 0, 1e-9)
        ours, theirs = served.build(live.env), simulated.build(env)
        for name in FEATURES:
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
        assert np.array_equal(np.argsort(ours.pair_order), np.argsort(theirs.pair_order))
        planned += sum(len(plan) for plan in env.sim.plans)
        decisions += 1
        _, _, terminated, _, _ = env.step(player.act(env))
    assert decisions > 50 and planned > 0  # real decisions, with plans to restore


def test_the_old_request_shape_is_a_driver_with_an_empty_plan() -> None:
    day = LiveDay.from_preset("geneva")
    body = {
        "drivers": [
            {
                "id": "d1",
                "position": {"lat": 46.2, "lon": 6.14},
                "free_in_min": 12.0,
                "shift_ends_in_min": 300.0,
            },
        ],
        "open_bookings": [
            {
                "id": "b1",
                "pickup": {"lat": 46.21, "lon": 6.15},
                "dropoff": {"lat": 46.19, "lon": 6.12},
                "requested_in_min": 30.0,
                "window_opens_in_min": 20.0,
                "window_closes_in_min": 55.0,
            },
        ],
        "minute_of_day": 600.0,
    }
    state = RoundRequest.model_validate(body).to_state(0.0, day)
    env = live_env(state, day, EnvConfig(max_drivers=1)).env
    sim = env.sim
    assert sim.now_min == 600.0 - day.start_min
    assert sim.plans == [[]]
    assert sim.driver_free_min()[0] == pytest.approx(sim.now_min + 12.0)
    assert sim.shift_start_min[0] == sim.now_min  # on shift now by default
    assert env.action_masks()[1]


def test_committed_drop_off_makes_the_driver_free_there_after_it() -> None:
    day = LiveDay.from_preset("geneva")
    dropoff = {
        "kind": "dropoff",
        "booking_id": "on-board",
        "location": {"lat": 46.19, "lon": 6.1},
        "service_min": 3.0,
    }
    driver = {
        "id": "d1",
        "position": {"lat": 46.2, "lon": 6.14},
        "shift_ends_in_min": 300.0,
        "plan": [dropoff],
    }
    body = {"drivers": [driver], "minute_of_day": 600.0}
    state = RoundRequest.model_validate(body).to_state(0.0, day)
    assert state.drivers[0].start == (46.19, 6.1)
    assert state.drivers[0].free_in_min > 3.0  # driving there, then the service time
    given = {**dropoff, "done_in_min": 17.5}
    body["drivers"][0]["plan"] = [given]
    state = RoundRequest.model_validate(body).to_state(0.0, day)
    assert (state.drivers[0].free_in_min, state.drivers[0].committed_stops) == (17.5, 1)
