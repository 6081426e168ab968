"""The Double-DQN agent: the target by hand, masked exploration, target updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.double_dqn import linear_epsilon
from rldispatch.agents.dqn.agent import DQNAgent
from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.replay import ReplayBatch

GAMMA = 0.9


def hand_made_agent(double_dqn: bool = True) -> DQNAgent:
    """Two inputs, one hidden layer of 2 (identity weights), three actions.

    For a next state ``s' = [1, 2]`` the hidden features are ``[1, 2]``, so
    ``Q_online(s') = [1, 2, 3]`` and ``Q_target(s') = [5, 4, 10]``.
    """
    config = DQNConfig(
        hidden_sizes=(2,), gamma=GAMMA, batch_size=2, buffer_size=10, double_dqn=double_dqn
    )
    agent = DQNAgent(2, 3, config, seed=0)
    with torch.no_grad():
        for network, head in (
            (agent.q_network, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
            (agent.target_network, [[1.0, 2.0], [0.0, 2.0], [2.0, 4.0]]),
        ):
            network.body[0].weight.copy_(torch.eye(2))
            network.body[0].bias.zero_()
            network.head.weight.copy_(torch.tensor(head))
            network.head.bias.zero_()
    return agent


def batch(rewards, terminated, bootstrap_steps, next_mask) -> ReplayBatch:
    n = len(rewards)
    return ReplayBatch(
        observations=torch.zeros(n, 2),
        actions=torch.zeros(n, dtype=torch.int64),
        rewards=torch.tensor(rewards, dtype=torch.float32),
        next_observations=torch.tensor([[1.0, 2.0]] * n),
        next_action_masks=torch.tensor([next_mask] * n),
        terminated=torch.tensor(terminated, dtype=torch.float32),
        bootstrap_steps=torch.tensor(bootstrap_steps, dtype=torch.float32),
    )


def test_double_dqn_target_matches_hand_computation_with_masked_next_action() -> None:
    agent = hand_made_agent()
    # Action 2 has the highest online Q-value (3) but is invalid in s': the online network's
    # best valid action is 1 (Q = 2), which the target network scores 4.
    targets = agent.td_target(
        batch([1.5, -2.0, 0.5], [0.0, 1.0, 0.0], [1, 1, 3], [True, True, False])
    )
    expected = [1.5 + GAMMA * 4.0, -2.0, 0.5 + GAMMA**3 * 4.0]
    np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-6)


def test_without_the_mask_the_target_would_differ() -> None:
    agent = hand_made_agent()
    all_valid = agent.td_target(batch([1.5], [0.0], [1], [True, True, True]))
    # With every action valid the online argmax is 2, scored 10 by the target network.
    np.testing.assert_allclose(all_valid.numpy(), [1.5 + GAMMA * 10.0], rtol=1e-6)


def test_vanilla_target_takes_the_target_networks_max_over_valid_actions() -> None:
    agent = hand_made_agent(double_dqn=False)
    targets = agent.td_target(batch([1.5], [0.0], [1], [True, True, False]))
    np.testing.assert_allclose(targets.numpy(), [1.5 + GAMMA * 5.0], rtol=1e-6)


def test_exploration_draws_only_valid_actions_and_all_of_them() -> None:
    agent = DQNAgent(4, 6, DQNConfig(hidden_sizes=(8,), batch_size=2, buffer_size=10), seed=1)
    mask = np.array([True, False, True, False, False, True])
    actions = {agent.act(np.zeros(4, np.float32), mask, epsilon=1.0) for _ in range(300)}
    assert actions == {0, 2, 5}


def test_greedy_action_is_the_best_valid_one() -> None:
    agent = hand_made_agent()
    observation = np.array([1.0, 2.0], dtype=np.float32)  # online Q = [1, 2, 3]
    assert agent.act(observation, np.array([True, True, True]), epsilon=0.0) == 2
    assert agent.act(observation, np.array([True, True, False]), epsilon=0.0) == 1


def test_update_moves_q_towards_the_target() -> None:
    config = DQNConfig(hidden_sizes=(16,), batch_size=4, buffer_size=10, learning_rate=1e-2)
    agent = DQNAgent(2, 3, config, seed=0)
    fixed = ReplayBatch(
        observations=torch.randn(4, 2, generator=torch.Generator().manual_seed(0)),
        actions=torch.tensor([0, 1, 2, 1]),
        rewards=torch.tensor([1.0, -1.0, 0.5, 2.0]),
        next_observations=torch.zeros(4, 2),
        next_action_masks=torch.ones(4, 3, dtype=torch.bool),
        terminated=torch.ones(4),
        bootstrap_steps=torch.ones(4),
    )
    first = agent.update(fixed).td_loss
    for _ in range(200):
        last = agent.update(fixed).td_loss
    assert last < first * 0.05
    assert agent.updates == 201


def test_hard_and_soft_target_updates() -> None:
    hard = hand_made_agent()
    hard.update_target()
    for online, target in zip(
        hard.q_network.parameters(), hard.target_network.parameters(), strict=True
    ):
        torch.testing.assert_close(online, target)
    config = DQNConfig(hidden_sizes=(2,), batch_size=2, buffer_size=10, tau=0.25)
    soft = DQNAgent(2, 3, config, seed=0)
    with torch.no_grad():
        soft.q_network.head.bias.fill_(4.0)
        soft.target_network.head.bias.fill_(0.0)
    soft.update_target()
    torch.testing.assert_close(soft.target_network.head.bias, torch.full((3,), 1.0))


@pytest.mark.parametrize(("step", "epsilon"), [(0, 1.0), (50, 0.525), (100, 0.05), (10**6, 0.05)])
def test_epsilon_decays_linearly_then_stays(step: int, epsilon: float) -> None:
    config = DQNConfig(epsilon_start=1.0, epsilon_end=0.05, epsilon_decay_steps=100)
    assert linear_epsilon(config, step) == pytest.approx(epsilon)


def test_same_seed_same_initial_weights_and_draws() -> None:
    config = DQNConfig(hidden_sizes=(8,), batch_size=2, buffer_size=10)
    a, b = DQNAgent(3, 4, config, seed=7), DQNAgent(3, 4, config, seed=7)
    torch.testing.assert_close(a.q_network.head.weight, b.q_network.head.weight)
    mask = np.ones(4, dtype=bool)
    observation = np.zeros(3, np.float32)
    assert [a.act(observation, mask, 1.0) for _ in range(20)] == [
        b.act(observation, mask, 1.0) for _ in range(20)
    ]
