"""The DQN agent: Q-network, replay buffer, Double-DQN update, model files, policy."""

from rldispatch.agents.double_dqn import count_parameters, linear_epsilon
from rldispatch.agents.dqn.agent import DQNAgent
from rldispatch.agents.dqn.config import DQNConfig, load_config, save_config
from rldispatch.agents.dqn.model_file import (
    LoadedModel,
    ModelFileError,
    ModelMetadata,
    check_compatible,
    load_model,
    save_model,
)
from rldispatch.agents.dqn.network import (
    PairScorerQNetwork,
    QNetwork,
    build_q_network,
)
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.dqn.replay import ReplayBuffer

__all__ = [
    "DQNAgent",
    "DQNConfig",
    "DQNPolicy",
    "LoadedModel",
    "ModelFileError",
    "ModelMetadata",
    "PairScorerQNetwork",
    "QNetwork",
    "ReplayBuffer",
    "build_q_network",
    "check_compatible",
    "count_parameters",
    "linear_epsilon",
    "load_config",
    "load_model",
    "save_config",
    "save_model",
]
