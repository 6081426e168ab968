""" "The pairwise Double-DQN update: targets by hand, masking across packed states."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.pairwise.agent import (
    PairDQNAgent,
    best_action_value,
)
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    GLOBAL_FEATURES,
    PAIR_FEATURES,
    PairState,
)
from rldispatch.agents.pairwise.replay import PairReplayBuffer


def tiny_state(
    n_drivers: int, n_bookings: int, pairs: list[tuple[int, int]], seed: int
) -> PairState:
    rng = np.random.default_rng(seed)
    return PairState(
        drivers=rng.normal(size=(n_drivers, len(DRIVER_FEATURES))).astype(np.float32),
        bookings=rng.normal(size=(n_bookings, len(BOOKING_FEATURES))).astype(np.float32),
        pairs=rng.normal(size=(len(pairs), len(PAIR_FEATURES))).astype(np.float32),
        pair_driver=np.array([d for d, _ in pairs], dtype=np.int64),
        pair_slot=np.array([b for _, b in pairs], dtype=np.int64),
        globals=rng.normal(size=len(GLOBAL_FEATURES)).astype(np.float32),
        pair_order=np.arange(len(pairs), dtype=np.int64),
        visible_slots=4,
    )


def test_best_action_value_takes_the_choosers_best_valid_action_of_each_state() -> None:
    # State 0 has pairs 0-1, state 1 has pairs 2-4. The chooser rates pair 3 best overall,
    # but it belongs to state 1: state 0 must pick among its own (pair 1 beats its wait).
    chooser_wait = torch.tensor([0.0, 10.0])
    chooser_pairs = torch.tensor([1.0, 2.0, 3.0, 9.0, 4.0])
    value_wait = torch.tensor([-1.0, -2.0])
    value_pairs = torch.tensor([100.0, 20.0, 300.0, 40.0, 500.0])
    pair_state = torch.tensor([0, 0, 1, 1, 1])
    got = best_action_value(chooser_wait, chooser_pairs, value_wait, value_pairs, pair_state)
    # state 0: best of (wait 0, pairs 1, 2) is pair 1 -> value 20 (not the target's own max 100)
    # state 1: wait (10) beats every pair (max 9) -> the target's wait value -2
    assert got.tolist() == [20.0, -2.0]


def test_best_action_value_of_a_state_without_pairs_is_its_wait() -> None:
    got = best_action_value(
        torch.tensor([0.5, 0.0]),
        torch.tensor([7.0]),
        torch.tensor([3.0, 4.0]),
        torch.tensor([8.0]),
        torch.tensor([1]),
    )
    assert got.tolist() == [3.0, 8.0]


def filled_buffer(n_step: int, gamma: float) -> PairReplayBuffer:
    states = [
        tiny_state(3, 2, [(0, 0), (1, 0), (2, 1)], seed=0),
        tiny_state(2, 1, [(0, 0), (1, 0)], seed=1),
        tiny_state(3, 2, [(0, 1), (2, 0), (1, 1), (2, 1)], seed=2),
    ]
    buffer = PairReplayBuffer(10, max_drivers=3, max_bookings=2, max_pairs=4)
    buffer.add_day(states, actions=[2, 0, 4], rewards=[1.0, 2.0, 4.0], gamma=gamma, n_step=n_step)
    return buffer


@pytest.mark.parametrize("double_dqn", [True, False])
def test_td_target_by_hand(double_dqn: bool) -> None:
    gamma = 0.5
    agent = PairDQNAgent(
        PairwiseConfig(hidden=8, head_hidden=8, gamma=gamma, double_dqn=double_dqn)
    )
    with torch.no_grad():  # make the target network differ from the online one
        for parameter in agent.target_network.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    buffer = filled_buffer(n_step=1, gamma=gamma)
    sample = buffer.sample(32)
    target = agent.td_target(sample)

    def q(network, index):
        wait, pairs = network(buffer.batch(np.array([index])))
        return torch.cat([wait, pairs]).detach().numpy()

    for row, index in enumerate(sample.indices):
        if index == 2:  # the day's last step: no bootstrap
            assert target[row].item() == pytest.approx(4.0)
            continue
        following = index + 1
        chooser = q(agent.q_network if double_dqn else agent.target_network, following)
        best = int(np.argmax(chooser))  # over wait and this state's own pairs only
        expected = [1.0, 2.0][index] + gamma * q(agent.target_network, following)[best]
        assert target[row].item() == pytest.approx(expected, abs=1e-5)


def test_n_step_returns_and_bootstraps_by_hand() -> None:
    buffer = filled_buffer(n_step=2, gamma=0.5)
    assert buffer.returns[:3].tolist() == pytest.approx([1.0 + 0.5 * 2.0, 2.0 + 0.5 * 4.0, 4.0])
    assert buffer.discounts[:3].tolist() == pytest.approx([0.25, 0.0, 0.0])
    assert buffer.bootstrap[0] == 2


def test_sampled_actions_point_at_their_own_states_pairs() -> None:
    buffer = filled_buffer(n_step=1, gamma=0.9)
    sample = buffer.sample(16)
    pair_state = sample.states.pair_state.numpy()
    for row, (action, pair) in enumerate(
        zip(sample.actions.tolist(), sample.action_pairs.tolist(), strict=True)
    ):
        if action == 0:
            assert pair == -1
        else:
            assert pair_state[pair] == row
            first = np.flatnonzero(pair_state == row)[0]
            assert pair - first == action - 1


def test_exploration_draws_only_wait_or_a_candidate() -> None:
    agent = PairDQNAgent(PairwiseConfig(hidden=8, head_hidden=8), seed=3)
    state = tiny_state(3, 2, [(0, 0), (2, 1)], seed=0)
    draws = {agent.act(state, epsilon=1.0) for _ in range(200)}
    assert draws == {-1, 0, 1}


def test_replay_state_dict_round_trip_restores_contents_and_sampler() -> None:
    buffer = filled_buffer(n_step=2, gamma=0.5)
    copy = PairReplayBuffer(
        buffer.capacity, buffer.max_drivers, buffer.max_bookings, buffer.max_pairs, seed=99
    )
    copy.load_state_dict(buffer.state_dict())
    first, second = buffer.sample(8), copy.sample(8)
    np.testing.assert_array_equal(first.actions.numpy(), second.actions.numpy())
    np.testing.assert_array_equal(first.returns.numpy(), second.returns.numpy())
    torch.testing.assert_close(first.states.pairs, second.states.pairs)
