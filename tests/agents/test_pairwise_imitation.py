"""Labels from a hindsight plan and the ranking losses of the pairwise network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.imitation import (
    WAIT,
    driver_loss,
    imitation_loss,
    plan_label,
    planned_pairs,
)
from rldispatch.agents.pairwise.network import PairBatch, PairQNetwork
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.hindsight import solve_scenario
from rldispatch.policies.plan_actions import DayPlan, PlanFollower
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day

DAY = geneva_day(2_000_200, 4)


@pytest.fixture(scope="module")
def plan() -> DayPlan:
    result = solve_scenario(DAY, time_limit_s=1.0)
    return DayPlan.from_hindsight(result, [b.id for b in DAY.bookings])


def test_labels_are_what_the_plan_does_through_the_env(plan):
    env = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=4))
    env.reset()
    features = FeatureBuilder(3)
    follower = PlanFollower(plan)
    labelled = waits = 0
    terminated = False
    while not terminated:
        state = features.build(env)
        action = follower.act(env)
        label = plan_label(env, state, plan)
        if label is not None:
            labelled += 1
            waits += label == WAIT
            assert state.action(label) == action
            if label != WAIT:
                booking = int(env.visible[state.pair_slot[label]])
                assert plan.driver_of[booking] == state.pair_driver[label]
        pairs = planned_pairs(env, state, plan)
        slots = state.pair_slot[pairs]
        assert len(set(slots.tolist())) == len(slots)
        for p in pairs.tolist():
            booking = int(env.visible[state.pair_slot[p]])
            assert plan.driver_of[booking] == state.pair_driver[p]
        _, _, terminated, _, _ = env.step(action)
    assert labelled > 0
    assert waits < labelled


def test_the_losses_are_low_when_the_label_scores_best_and_high_otherwise(plan):
    env = DispatchEnv(preset=None, scenario=DAY, config=EnvConfig(max_drivers=4))
    env.reset()
    while len(env.visible) < 2:
        env.step(0)
    state = FeatureBuilder(3).build(env)
    assert state.n_pairs >= 2
    network = PairQNetwork(known_reward=TrainingReward(RewardConfig(), 1.0, 0.2).known_reward())
    batch = PairBatch.from_states([state])
    with torch.no_grad():
        wait_q, pair_q = network(batch)
    best = int(torch.argmax(pair_q))
    worst = int(torch.argmin(pair_q))
    low, agree = imitation_loss(network, batch, torch.tensor([best]), 0.5)
    high, disagree = imitation_loss(network, batch, torch.tensor([worst]), 0.5)
    assert low.item() < high.item()
    assert (agree.item(), disagree.item()) == (1.0, 0.0 if pair_q[worst] < pair_q[best] else 1.0)
    waited, _ = imitation_loss(network, batch, torch.tensor([WAIT]), 0.5)
    expected = torch.logsumexp(torch.cat([wait_q, pair_q]) / 0.5, 0) - wait_q[0] / 0.5
    assert waited.item() == pytest.approx(expected.item(), rel=1e-5)
    same_booking = np.flatnonzero(state.pair_slot == state.pair_slot[best])
    logits = pair_q[torch.from_numpy(same_booking)] / 0.5
    by_driver, _ = driver_loss(network, batch, torch.tensor([best]), 0.5)
    expected = torch.logsumexp(logits, 0) - pair_q[best] / 0.5
    assert by_driver.item() == pytest.approx(expected.item(), rel=1e-5)
