"""A round's features are kept between its assignments (the packed plans of the drivers an
assignment changed are spliced in, not every plan packed again): the round assigns what it
assigns with features built from scratch before every decision, at 10, 50 and 300 drivers."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.replay import mid_day_states
from rldispatch.service.decisions.round_play import play_round
from rldispatch.service.decisions.snapshot import LiveDay, LiveState, live_env
from rldispatch.service.http.fleet_schemas import RoundRequest
from rldispatch.service.http.schemas import MAX_OPEN_BOOKINGS
from tests.service.helpers import make_pairwise_model_file

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)


def fleet_states(n_drivers: int, count: int, day: LiveDay) -> list[LiveState]:
    """``count`` round requests of geneva days of ``n_drivers`` drivers, each played with
    cheapest insertion up to a decision between 09:00 and 13:00 (at most the 1,000 most
    pressing open bookings, as a request holds)."""
    states = mid_day_states(
        lambda seed: geneva_day(seed, n_drivers),
        EnvConfig(max_drivers=n_drivers),
        day.start_min,
        np.random.default_rng(n_drivers),
        MAX_OPEN_BOOKINGS,
    )
    return [
        RoundRequest.model_validate(body).to_state(0.0, day) for _, body in islice(states, count)
    ]


@pytest.fixture
def manager(tmp_path: Path) -> RLDispatchManager:
    """A manager serving an untrained pairwise model (its pair scores drawn at random) to
    every request."""
    path = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    manager = RLDispatchManager(path, state=RL_ON)
    assert manager.model is not None
    return manager


@pytest.mark.parametrize(("n_drivers", "count"), [(10, 4), (50, 3), (300, 2)])
def test_a_round_assigns_what_features_built_from_scratch_assign(
    manager: RLDispatchManager, n_drivers: int, count: int
) -> None:
    model = manager.model
    assigned = 0
    for state in fleet_states(n_drivers, count, manager.day):
        kept = manager.dispatch_round(state)
        assert kept.source == "rl", kept.reason
        policy = model.policy()

        def from_scratch(env: DispatchEnv, policy=policy) -> int:
            policy.features.forget()
            return policy.act(env)

        config = manager.rl_config(len(state.drivers), model=model)
        scratch = play_round(live_env(state, manager.day, config), from_scratch)
        assert kept.assignments == scratch.assignments
        assert kept.waiting == scratch.waiting
        assert kept.ended == scratch.ended
        assigned += len(kept.assignments)
    assert assigned >= count  # rounds that assign: the kept features were read again


@pytest.mark.parametrize(("n_drivers", "count"), [(50, 5), (300, 3)])
def test_the_features_kept_through_a_round_are_the_features_built_from_scratch(
    manager: RLDispatchManager, n_drivers: int, count: int
) -> None:
    model = manager.model
    decisions = 0
    for state in fleet_states(n_drivers, count, manager.day):
        policy = model.policy()
        k = policy.features.candidates_per_booking

        def checked(env: DispatchEnv, policy=policy, k=k) -> int:
            nonlocal decisions
            kept = policy.state(env)
            fresh = FeatureBuilder(k).build(env)
            for name in ("drivers", "bookings", "pairs", "pair_driver", "pair_slot", "globals"):
                np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name), name)
            np.testing.assert_array_equal(kept.pair_order, fresh.pair_order)
            assert policy.features.planned_late(env.sim) == env.sim.planned_late_count()
            decisions += 1
            return policy.act(env)

        config = manager.rl_config(len(state.drivers), model=model)
        play_round(live_env(state, manager.day, config), checked)
    assert decisions > count  # some decisions came after an assignment of the round
