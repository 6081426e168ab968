"""The pairwise learned policy behind the :class:`rldispatch.policies.base.Policy` interface.

One model serves any fleet: build the env with ``EnvConfig(max_drivers=...)`` at least the
day's drivers and call :meth:`PairwisePolicy.act`. :meth:`PairwisePolicy.choose` gives the
chosen (driver, slot) and :meth:`PairwisePolicy.scores` every candidate's score, best first
(the service's "top candidates").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rldispatch.agents.kinds import CandidateScore, LearnedPolicy
from rldispatch.agents.pairwise.agent import TIE_TOLERANCE
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState
from rldispatch.agents.pairwise.model_file import (
    LoadedPairwiseModel,
    PairwiseMetadata,
    load_pairwise_model,
    untrained_network,
)
from rldispatch.agents.pairwise.network import NumpyPairQ, PairQNetwork, choose
from rldispatch.env import DispatchEnv
from rldispatch.rewards import RewardConfig


@dataclass(frozen=True)
class PairScore:
    """One candidate (driver, booking) pair and its Q-value."""

    driver: int  # driver index in the day
    slot: int  # visible slot
    booking: int  # booking index in the day
    q_value: float
    insertion_cost: float
    pickup_min: float
    added_km: float


@dataclass(frozen=True)
class PairScores:
    """The Q-value of waiting and of every candidate pair, best first."""

    wait_q: float
    pairs: tuple[PairScore, ...]

    def for_slot(self, slot: int) -> tuple[PairScore, ...]:
        """The candidates of the booking in ``slot``, best first."""
        return tuple(pair for pair in self.pairs if pair.slot == slot)


class PairwisePolicy(LearnedPolicy):
    """Greedy action of a pairwise Q-network (NumPy forward, one decision at a time).

    :param model: a :class:`LoadedPairwiseModel`, or a bare :class:`PairQNetwork` (the
        training loop's live network) with ``candidates_per_booking``.
    """

    def __init__(
        self,
        model: LoadedPairwiseModel | PairQNetwork,
        name: str = "pairwise",
        candidates_per_booking: int | None = None,
    ) -> None:
        self.name = name
        if isinstance(model, LoadedPairwiseModel):
            self.metadata = model.metadata
            network = model.network
            k = candidates_per_booking or model.metadata.candidates_per_booking
        else:
            self.metadata = None
            network = model
            k = candidates_per_booking or 6
        self.network = network
        self.features = FeatureBuilder(k)
        self.q_function = NumpyPairQ(network)

    @classmethod
    def from_scorer(
        cls,
        q_function: Callable[[PairState], tuple[float, np.ndarray]],
        metadata: PairwiseMetadata,
        name: str = "pairwise",
    ) -> PairwisePolicy:
        """A policy whose forward pass runs elsewhere (e.g. :class:`OnnxPairQ` on ONNX
        Runtime): the same features and choice, ``q_function(state) -> (Q_wait, Q_pairs)``."""
        policy = cls.__new__(cls)
        policy.name = name
        policy.metadata = metadata
        policy.network = None
        policy.features = FeatureBuilder(metadata.candidates_per_booking)
        policy.q_function = q_function
        return policy

    @classmethod
    def from_file(cls, path: str | Path, name: str = "pairwise") -> PairwisePolicy:
        return cls(load_pairwise_model(path), name=name)

    def state(self, env: DispatchEnv) -> PairState:
        """The features the network reads in the env's current state."""
        return self.features.build(env)

    def _best(self, env: DispatchEnv) -> tuple[PairState, int]:
        state = self.features.build(env)
        q_wait, q_pairs = self.q_function(state)
        return state, choose(q_wait, q_pairs, state.pair_order, TIE_TOLERANCE)

    def act(self, env: DispatchEnv) -> int:
        """The env action: ``0`` wait or ``1 + driver * slots + slot``."""
        state, best = self._best(env)
        return state.action(best)

    def choose(self, env: DispatchEnv) -> tuple[int, int] | None:
        """``(driver index, visible slot)`` of the chosen pair, or None to wait."""
        state, best = self._best(env)
        if best < 0:
            return None
        return int(state.pair_driver[best]), int(state.pair_slot[best])

    def scores(self, env: DispatchEnv, time_of_day: float | None = None) -> PairScores:
        """Q of waiting and of every candidate pair in the env's state, best first.

        :param time_of_day: see :meth:`FeatureBuilder.build` (for live snapshots).
        """
        state = self.features.build(env, time_of_day)
        q_wait, q_pairs = self.q_function(state)
        order = np.lexsort((state.pair_order, -q_pairs))
        table = env.table
        pairs = []
        for p in order:
            driver, slot = int(state.pair_driver[p]), int(state.pair_slot[p])
            pairs.append(
                PairScore(
                    driver=driver,
                    slot=slot,
                    booking=int(env.visible[slot]),
                    q_value=float(q_pairs[p]),
                    insertion_cost=float(table.cost[driver, slot]),
                    pickup_min=float(table.pickup_min[driver, slot]),
                    added_km=float(table.added_km[driver, slot]),
                )
            )
        return PairScores(wait_q=float(q_wait), pairs=tuple(pairs))

    def candidate_scores(self, env: DispatchEnv, slot: int) -> list[CandidateScore]:
        """The candidate drivers of the booking in ``slot``, best first, with the known parts
        of their scores."""
        return [
            CandidateScore(
                driver=pair.driver,
                score=pair.q_value,
                parts={
                    "added_km": pair.added_km,
                    "pickup_min": pair.pickup_min,
                    "insertion_cost": pair.insertion_cost,
                },
            )
            for pair in self.scores(env).for_slot(slot)
        ]


def known_reward_policy(reward: RewardConfig, name: str = "known-reward") -> PairwisePolicy:
    """The pairwise network's untrained start, in memory: each action scored by the part of
    its reward known when it is chosen (``reward``'s weights, shaping weight 1), so the policy
    takes the action whose known reward is best. Its hidden weights never reach a score (the
    output layers are zero) and are drawn without touching torch's global random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        network = untrained_network(reward, seed=0)
    network.eval()
    network.requires_grad_(False)
    return PairwisePolicy(network, name=name, candidates_per_booking=6)
