"""The pairwise agent: one Q-network for any fleet, scoring each (driver, booking) pair.

See ``docs/pairwise.md``. Load a model with :func:`load_pairwise_model` and dispatch with
``PairwisePolicy(model).act(env)``; train one with ``rldispatch train --agent pairwise``
(:mod:`rldispatch.training.train`).
"""

from rldispatch.agents.pairwise.agent import PairDQNAgent
from rldispatch.agents.pairwise.config import PairwiseConfig
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
    "PairQNetwork",
    "PairReplayBuffer",
    "PairScore",
    "PairScores",
    "PairwiseConfig",
    "PairState",
    "PairwiseMetadata",
    "PairwiseModelError",
    "PairwisePolicy",
    "load_pairwise_model",
    "save_pairwise_model",
]
