"""The Q-network: the prototype's size, the NumPy forward pass, masked argmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.double_dqn import count_parameters
from rldispatch.agents.dqn.network import (
    NumpyQFunction,
    PairScorerQNetwork,
    QNetwork,
    make_q_function,
    masked_argmax,
)
from rldispatch.env import DispatchEnv


def test_classic_network_has_the_prototypes_253129_parameters() -> None:
    env = DispatchEnv(preset="classic")
    assert env.observation_space.shape == (122,)
    assert env.action_space.n == 201
    network = QNetwork(122, 201, (512, 256, 128))
    assert count_parameters(network) == 253_129
    shapes = [tuple(layer.weight.shape) for layer in network.modules() if hasattr(layer, "weight")]
    assert shapes == [(512, 122), (256, 512), (128, 256), (201, 128)]


@pytest.mark.parametrize("dueling", [False, True])
def test_numpy_forward_matches_torch(dueling: bool) -> None:
    torch.manual_seed(0)
    network = QNetwork(10, 7, (16, 8), dueling=dueling)
    observations = np.random.default_rng(0).normal(size=(5, 10)).astype(np.float32)
    expected = network(torch.from_numpy(observations)).detach().numpy()
    q_function = NumpyQFunction(network)
    np.testing.assert_allclose(q_function(observations), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_function(observations[0]), expected[0], rtol=1e-5, atol=1e-6)


def test_numpy_forward_follows_in_place_weight_updates() -> None:
    network = QNetwork(4, 3, (8,))
    q_function = NumpyQFunction(network)
    observation = np.ones(4, dtype=np.float32)
    before = q_function(observation).copy()
    with torch.no_grad():
        network.head.bias.add_(1.0)
    np.testing.assert_allclose(q_function(observation), before + 1.0, rtol=1e-6)


def test_dueling_q_is_value_plus_centred_advantage() -> None:
    network = QNetwork(3, 4, (5,), dueling=True)
    observations = torch.randn(2, 3)
    features = network.body(observations)
    advantage = network.head(features)
    value = network.value_head(features)
    expected = value + advantage - advantage.mean(dim=1, keepdim=True)
    torch.testing.assert_close(network(observations), expected)


def test_masked_argmax_never_picks_a_masked_action() -> None:
    q_values = np.array([0.0, 9.0, 5.0, 7.0])
    assert masked_argmax(q_values, np.array([True, False, True, True])) == 3
    assert masked_argmax(q_values, np.array([True, False, False, False])) == 0


@pytest.mark.parametrize("dueling", [False, True])
def test_pair_scorer_equals_one_mlp_applied_to_each_pairs_features(dueling: bool) -> None:
    torch.manual_seed(0)
    d, m = 3, 4
    network = PairScorerQNetwork(d, m, hidden_sizes=(16, 8), context_size=5, dueling=dueling)
    observations = torch.randn(6, network.observation_size)
    drivers, slots, pair, global_features = network.split(observations)
    context = network.context(observations)
    features = torch.cat(
        [
            drivers[:, :, None, :].expand(6, d, m, 4),
            slots[:, None, :, :].expand(6, d, m, 4),
            pair,
            global_features[:, None, None, :].expand(6, d, m, 2),
            context[:, None, None, :].expand(6, d, m, 5),
        ],
        dim=-1,
    )
    expected = torch.cat([network.wait_head(context), network.pair_scorer(features).flatten(1)], 1)
    if dueling:
        expected = network.value_head(context) + expected - expected.mean(-1, keepdim=True)
    torch.testing.assert_close(network(observations), expected)
    q_function = make_q_function(network)
    np.testing.assert_allclose(
        q_function(observations.numpy()), expected.detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_pair_features_are_offset_distance_and_slack() -> None:
    network = PairScorerQNetwork(1, 1, hidden_sizes=(4,), context_size=2)
    # driver: free at (0.1, 0.2) in 0.5 h; booking: pickup at (0.4, 0.6), window closes in 2 h
    observation = torch.tensor([[0.1, 0.2, 0.5, 0.3, 0.4, 0.6, 2.0, 0.0, 0.25, 0.1]])
    _, _, pair, _ = network.split(observation)
    torch.testing.assert_close(pair[0, 0, 0], torch.tensor([0.3, 0.4, 0.5, 1.5]), atol=1e-3, rtol=0)


def test_pair_scorer_acts_on_the_env_layout_and_one_observation() -> None:
    network = PairScorerQNetwork(10, 20)
    assert (network.observation_size, network.n_actions) == (122, 201)
    single = torch.randn(122)
    torch.testing.assert_close(network(single), network(single[None, :])[0])


@pytest.mark.parametrize("dueling", [False, True])
def test_q_of_actions_equals_the_full_forward_gathered(dueling: bool) -> None:
    torch.manual_seed(1)
    for network in (
        QNetwork(122, 201, (32,), dueling),
        PairScorerQNetwork(10, 20, (8,), 4, dueling),
    ):
        observations = torch.randn(7, 122)
        actions = torch.tensor([0, 1, 20, 21, 200, 57, 0])
        expected = network(observations).gather(1, actions[:, None]).squeeze(1)
        torch.testing.assert_close(network.q_of_actions(observations, actions), expected)


@pytest.mark.parametrize("dueling", [False, True])
def test_masked_q_values_score_valid_actions_only(dueling: bool) -> None:
    torch.manual_seed(2)
    generator = np.random.default_rng(0)
    observations = torch.randn(5, 122)
    masks = torch.from_numpy(generator.random((5, 201)) < 0.05)
    masks[:, 0] = True
    masks[3, 1:] = False  # a state where only waiting is possible
    for network in (
        QNetwork(122, 201, (32,), dueling),
        PairScorerQNetwork(10, 20, (8,), 4, dueling),
    ):
        full = network(observations)
        expected = full.masked_fill(~masks, -torch.inf)
        torch.testing.assert_close(network.masked_q_values(observations, masks), expected)
        q_function = make_q_function(network)
        np.testing.assert_allclose(
            q_function.masked(observations.numpy(), masks.numpy()),
            expected.detach().numpy(),
            rtol=1e-5,
            atol=1e-5,
        )
        single = q_function.masked(observations[0].numpy(), masks[0].numpy())
        np.testing.assert_allclose(single, expected[0].detach().numpy(), rtol=1e-5, atol=1e-5)
