import numpy as np
import pytest

from rldispatch.env import DispatchEnv
from rldispatch.policies import BASELINES, make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.training.evaluation import evaluate_policy

DAYS = [make_preset("geneva", HELD_OUT_SEEDS.start + k) for k in range(20)]
HEURISTICS = [name for name in sorted(BASELINES) if name != "reopt"]
"""The quick baselines; re-optimisation has its own tests (tests/policies/test_reopt.py)."""


@pytest.fixture(scope="module")
def results():
    return {name: evaluate_policy(make_baseline(name, seed=0), DAYS) for name in HEURISTICS}


def mean(days, metric):
    return float(np.mean([getattr(day, metric) for day in days]))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_only_takes_valid_actions(name):
    env = DispatchEnv(preset="geneva")
    policy = make_baseline(name, seed=1)
    env.reset(options={"day_seed": 5})
    terminated = False
    while not terminated:
        action = policy.act(env)
        assert env.action_masks()[action]
        _, _, terminated, _, info = env.step(action)
        assert "invalid_action" not in info


def test_nearest_completes_more_than_random(results):
    assert mean(results["nearest"], "completion_rate") > mean(results["random"], "completion_rate")


def test_insertion_at_least_as_good_as_nearest(results):
    insertion, nearest = results["insertion"], results["nearest"]
    assert mean(insertion, "completion_rate") >= mean(nearest, "completion_rate")
    assert mean(insertion, "late_pickup_rate") <= mean(nearest, "late_pickup_rate")
    assert mean(insertion, "distance_km") < mean(nearest, "distance_km")


def test_geneva_fleet_is_sized_for_its_demand(results):
    assert mean(results["insertion"], "completion_rate") >= 0.95


def test_matching_is_close_to_insertion(results):
    assert mean(results["matching"], "reward") > mean(results["nearest"], "reward")


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown policy"):
        make_baseline("oracle")
