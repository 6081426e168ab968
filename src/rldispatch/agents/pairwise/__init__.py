"""The pairwise agent: one Q-network for any fleet, scoring each (driver, booking) pair.

See ``docs/pairwise.md``. Load a model with :func:`load_pairwise_model` and dispatch with
``PairwisePolicy(model).act(env)``; train one with
:func:`rldispatch.training.train_pairwise.train_pairwise`.
"""

from rldispatch.agents.pairwise.agent import PairDQNAgent, PairDQNConfig
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState
from rldispatch.agents.pairwise.model_file import (
    LoadedPairwiseModel,
    PairwiseMetadata,
    PairwiseModelError,
    load_pairwise_model,
    save_pairwise_model,
)
from rldispatch.agents.pairwise.network import PairBatch, PairQNetwork
from rldispatch.agents.pairwise.policy import PairScore, PairScores, PairwisePolicy
from rldispatch.agents.pairwise.replay import PairReplayBuffer

__all__ = [
    "FeatureBuilder",
    "LoadedPairwiseModel",
    "PairBatch",
    "PairDQNAgent",
    "PairDQNConfig",
    "PairQNetwork",
    "PairReplayBuffer",
    "PairScore",
    "PairScores",
    "PairState",
    "PairwiseMetadata",
    "PairwiseModelError",
    "PairwisePolicy",
    "load_pairwise_model",
    "save_pairwise_model",
]
