"""DQNPolicy: the Policy interface over a loaded model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import (
    ModelFileError,
    ModelMetadata,
    load_model,
    save_model,
)
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.scenarios.presets import make_preset
from rldispatch.training.evaluation import run_day


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    env_config = EnvConfig()
    network = QNetwork(env_config.observation_size, env_config.n_actions, (32,))
    metadata = ModelMetadata(
        observation_size=env_config.observation_size,
        n_actions=env_config.n_actions,
        env_config=env_config_to_dict(env_config),
        preset="geneva",
        hyperparameters=DQNConfig(hidden_sizes=(32,)).to_dict(),
    )
    return save_model(tmp_path / "model.safetensors", network, metadata)


def test_policy_takes_the_best_valid_action_at_every_step(model_path) -> None:
    policy = DQNPolicy(load_model(model_path))
    assert isinstance(policy, Policy) and policy.name == "dqn"
    env = DispatchEnv(preset="geneva")
    env.reset(options={"day_seed": 5})
    for _ in range(30):
        action = policy.act(env)
        mask = env.action_masks()
        q_values = policy.q_values(env.observation()[None, :])[0]
        assert mask[action]
        assert q_values[action] == q_values[mask].max()
        env.step(action)


def test_policy_plays_a_whole_day_without_invalid_actions(model_path) -> None:
    env = DispatchEnv(preset="geneva")
    metrics = run_day(DQNPolicy.from_file(model_path), env, make_preset("geneva", 3))
    assert env.invalid_actions == 0
    assert metrics.decisions > 0


def test_q_values_come_in_batches(model_path) -> None:
    policy = DQNPolicy(load_model(model_path))
    observations = np.random.default_rng(0).normal(size=(4, 122)).astype(np.float32)
    expected = policy.network(torch.from_numpy(observations)).numpy()
    np.testing.assert_allclose(policy.q_values(observations), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="121 floats"):
        policy.q_values(np.zeros((2, 121)))


def test_policy_refuses_an_env_of_other_sizes(model_path) -> None:
    policy = DQNPolicy(load_model(model_path))
    env = DispatchEnv(preset="geneva", config=EnvConfig(visible_slots=10))
    env.reset(options={"day_seed": 1})
    with pytest.raises(
        ModelFileError,
        match="trained for 10 drivers and 20 booking slots; these days need 10 drivers and 10 ",
    ):
        policy.act(env)
