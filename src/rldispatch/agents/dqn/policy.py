"""The learned policy behind the :class:`rldispatch.policies.base.Policy` interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rldispatch.agents.dqn.model_file import LoadedModel, check_compatible, load_model
from rldispatch.agents.dqn.network import QNetwork, make_q_function
from rldispatch.agents.kinds import CandidateScore, LearnedPolicy
from rldispatch.env import DispatchEnv


class DQNPolicy(LearnedPolicy):
    """Masked greedy action of a trained Q-network (runs in NumPy, one decision at a time).

    :param model: a :class:`LoadedModel`, or a bare :class:`QNetwork` (the training loop's
        live network; no size check against the env then beyond the network's own).
    """

    name = "dqn"

    def __init__(self, model: LoadedModel | QNetwork, name: str = "dqn") -> None:
        self.name = name
        if isinstance(model, LoadedModel):
            self.metadata = model.metadata
            network = model.network
        else:
            self.metadata = None
            network = model
        self.network = network
        self.observation_size = network.observation_size
        self.n_actions = network.n_actions
        self.q_function = make_q_function(network)

    @classmethod
    def from_file(cls, path: str | Path, name: str = "dqn") -> DQNPolicy:
        return cls(load_model(path), name=name)

    def _check(self, env: DispatchEnv) -> None:
        if self.metadata is not None:
            check_compatible(self.metadata, env)
        elif (env.observation_space.shape[0], env.action_space.n) != (
            self.observation_size,
            self.n_actions,
        ):
            raise ValueError(
                f"network reads {self.observation_size} floats and scores {self.n_actions} "
                f"actions; the env has {env.observation_space.shape[0]} and {env.action_space.n}"
            )

    def act(self, env: DispatchEnv) -> int:
        """The valid action with the highest Q-value in the env's current state."""
        self._check(env)
        return int(np.argmax(self.q_function.masked(env.observation(), env.action_masks())))

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a batch of observations, ``(n, n_actions)`` (or one observation)."""
        observations = np.asarray(observations, dtype=np.float32)
        if observations.shape[-1] != self.observation_size:
            raise ValueError(
                f"q_values: observations have {observations.shape[-1]} floats, the model "
                f"reads {self.observation_size}"
            )
        return self.q_function(observations)

    def candidate_scores(self, env: DispatchEnv, slot: int) -> list[CandidateScore]:
        """The drivers who may take the booking in ``slot``, best Q-value first."""
        self._check(env)
        q_values = self.q_function.masked(env.observation(), env.action_masks())
        slots = env.config.visible_slots
        drivers = np.arange(len(env.scenario.drivers))
        scores = q_values[1 + drivers * slots + slot]
        order = np.argsort(-scores, kind="stable")
        return [
            CandidateScore(driver=int(drivers[i]), score=float(scores[i]))
            for i in order
            if np.isfinite(scores[i])
        ]
