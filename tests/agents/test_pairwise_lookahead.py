"""The lookahead expert: its choice is the best of its rollouts, and it reads no booking
that is not yet released."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

from rldispatch.agents.pairwise.agent import PairDQNAgent
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.lookahead import WAIT, LookaheadExpert, LookaheadPolicy
from rldispatch.agents.pairwise.network import NumpyPairQ
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day

DAY = geneva_day(2_000_600, 5)
KNOWN = TrainingReward(RewardConfig(), 1.0, 0.2).known_reward()


def start_network() -> NumpyPairQ:
    return NumpyPairQ(PairDQNAgent(PairwiseConfig(), seed=0, known_reward=KNOWN).q_network)


def new_env(day=DAY) -> DispatchEnv:
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=5))
    env.reset()
    return env


def states_with_choices(env: DispatchEnv, expert: LookaheadExpert, count: int):
    """Play greedily, yielding each state in which the expert looks at two pairs or more."""
    features = FeatureBuilder(6)
    found = 0
    terminated = env.sim.done
    while not terminated and found < count:
        state = features.build(env)
        best, order = expert.ranked(state)
        if best != WAIT and order.size > 1:
            found += 1
            yield state
        _, _, terminated, _, _ = env.step(state.action(best))


def test_the_choice_is_the_best_rollout_and_the_first_candidate_is_the_networks_own():
    expert = LookaheadExpert(start_network(), candidates=3)
    env = new_env()
    differs = 0
    for state in states_with_choices(env, expert, 6):
        best, order, rewards = expert.values(env, state)
        assert order[0] == best and 1 < order.size <= 3
        assert expert.choose(env, state) == order[int(np.argmax(rewards))]
        assert rewards[order.tolist().index(expert.choose(env, state))] == rewards.max()
        differs += int(expert.choose(env, state) != best)
    assert expert.rollouts > 0
    assert differs > 0


def test_the_expert_reads_no_booking_released_later():
    expert = LookaheadExpert(start_network(), candidates=3)
    env = new_env()
    state = next(iter(states_with_choices(env, expert, 30)))
    now = env.sim.now_min
    later = [b.release_min > now for b in DAY.bookings]
    assert any(later)
    # The same day with every later booking moved elsewhere and made earlier.
    moved = tuple(
        replace(b, pickup=b.dropoff, dropoff=b.pickup) if is_later else b
        for b, is_later in zip(DAY.bookings, later, strict=True)
    )
    other_env = new_env(replace(DAY, bookings=moved))
    other_state = next(
        candidate
        for candidate in states_with_choices(other_env, expert, 30)
        if other_env.sim.now_min == now and other_env.decisions == env.decisions
    )
    assert np.array_equal(other_state.pairs, state.pairs)
    _, order, rewards = expert.values(env, state)
    _, other_order, other_rewards = expert.values(other_env, other_state)
    assert np.array_equal(order, other_order)
    assert np.array_equal(rewards, other_rewards)
    # The moved bookings do change the day once they are released.
    ends = []
    for played in (env, other_env):
        terminated = played.sim.done
        while not terminated:
            state = FeatureBuilder(6).build(played)
            _, _, terminated, _, _ = played.step(state.action(expert.ranked(state)[0]))
        ends.append(played.metrics().distance_km)
    assert ends[0] != ends[1]


def test_the_lookahead_policy_plays_a_day_and_pickles_for_worker_processes():
    policy = LookaheadPolicy(start_network(), candidates=2)
    small_day = geneva_day(2_000_601, 3)
    env = new_env(small_day)
    first = []
    terminated = env.sim.done
    while not terminated:
        action = policy.act(env)
        first.append(action)
        _, _, terminated, _, _ = env.step(action)
    again = pickle.loads(pickle.dumps(policy))
    env = new_env(small_day)
    for action in first:
        assert again.act(env) == action
        env.step(action)
    assert env.sim.done


def test_a_spent_budget_stops_the_look_and_keeps_the_networks_choice():
    hurried = LookaheadExpert(start_network(), candidates=3, time_budget_s=1e-9)
    unhurried = LookaheadExpert(start_network(), candidates=3)
    env = new_env()
    seen = 0
    for state in states_with_choices(env, unhurried, 4):
        best, order, rewards = hurried.values(env, state)
        assert order.size == 0 and rewards.size == 0  # the first rollout is cut too
        assert hurried.choose(env, state) == best  # the network's own choice stands
        _, full_order, full_rewards = unhurried.values(env, state)
        assert full_order.size > 1 and full_rewards.size == full_order.size
        seen += 1
    assert seen == 4 and hurried.cut_short == 2 * seen  # values and choose, each cut short
    assert unhurried.cut_short == 0


def test_a_budget_that_is_not_positive_is_refused_by_name():
    for budget in (0.0, -1.0):
        with pytest.raises(ValueError, match="time_budget_s"):
            LookaheadExpert(start_network(), time_budget_s=budget)
