"""The pairwise Double-DQN agent: masked epsilon-greedy acting and the learning update.

Actions are ``0`` (wait) or ``1 + p`` (candidate pair ``p`` of the state). Invalid actions are
masked in three places, as in the flat agent: the greedy argmax (padded pairs score
``-inf``), the exploration draw (uniform over wait and the state's candidates) and the next
state's argmax in the target.
"""

from __future__ import annotations

import numpy as np
import torch

from rldispatch.agents.double_dqn import TargetNetworkAgent, UpdateStats, adam
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import PairState
from rldispatch.agents.pairwise.network import (
    KnownReward,
    NumpyPairQ,
    PairQNetwork,
    choose,
    segment_max,
)
from rldispatch.agents.pairwise.replay import PairReplaySample

TIE_TOLERANCE = 1e-5
"""Scores this close count as tied (then the driver and booking ids decide)."""


def best_action_value(
    chooser_wait: torch.Tensor,
    chooser_pairs: torch.Tensor,
    value_wait: torch.Tensor,
    value_pairs: torch.Tensor,
    pair_state: torch.Tensor,
) -> torch.Tensor:
    """Per state, ``value`` of the action ``chooser`` rates best (wait or one of the state's
    pairs; Double DQN: the online network chooses, the target network values)."""
    n_states = chooser_wait.shape[0]
    best_pair = segment_max(chooser_pairs, pair_state, n_states)
    is_best = chooser_pairs >= best_pair.index_select(0, pair_state)
    # Ties between pairs are exact duplicates in practice; take the highest value among them.
    masked = torch.where(is_best, value_pairs, -torch.inf)
    value_of_best_pair = segment_max(masked, pair_state, n_states)
    return torch.where(chooser_wait >= best_pair, value_wait, value_of_best_pair)


def greedy_candidate(q_function: NumpyPairQ, state: PairState) -> int:
    """The best action of ``state``: a candidate index, or ``-1`` for wait."""
    q_wait, q_pairs = q_function(state)
    return choose(q_wait, q_pairs, state.pair_order, TIE_TOLERANCE)


class PairDQNAgent(TargetNetworkAgent):
    """Online and target :class:`PairQNetwork`, Adam, exploration generator.

    :param seed: seeds the weight initialisation and the exploration draws.
    :param known_reward: the reward of an action known when it is chosen, added to the
        learned scores (see :class:`KnownReward`); None learns everything.
    """

    def __init__(
        self, config: PairwiseConfig, seed: int = 0, known_reward: KnownReward | None = None
    ) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.q_network = PairQNetwork(config.hidden, config.head_hidden, known_reward)
        self.target_network = PairQNetwork(config.hidden, config.head_hidden, known_reward)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = adam(self.q_network, config.learning_rate)
        self.rng = np.random.default_rng(seed)
        self.q_function = NumpyPairQ(self.q_network)
        self.updates = 0

    # --- acting ----------------------------------------------------------------------------

    def act(self, state: PairState, epsilon: float) -> int:
        """Epsilon-greedy: a candidate index, or ``-1`` for wait (explores over wait and the
        candidates only)."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(-1, state.n_pairs))
        return greedy_candidate(self.q_function, state)

    # --- learning --------------------------------------------------------------------------

    def td_target(self, sample: PairReplaySample) -> torch.Tensor:
        """``R + gamma^k Q_target(s', a*)``, ``a*`` the best valid next action (wait or one of
        the next state's candidates) by the online network (Double DQN) or by the target
        network."""
        next_states = sample.next_states
        with torch.no_grad():
            target_wait, target_pairs = self.target_network(next_states)
            if self.config.double_dqn:
                chooser_wait, chooser_pairs = self.q_network(next_states)
            else:
                chooser_wait, chooser_pairs = target_wait, target_pairs
            next_q = best_action_value(
                chooser_wait, chooser_pairs, target_wait, target_pairs, next_states.pair_state
            )
            return sample.returns + sample.discounts * next_q

    def update(self, sample: PairReplaySample) -> UpdateStats:
        """One gradient step on the Huber TD loss of ``sample``."""
        target = self.td_target(sample)
        wait_q, pair_q = self.q_network(sample.states)
        taken_pair = sample.action_pairs
        q_taken = torch.where(taken_pair < 0, wait_q, pair_q[taken_pair.clamp(min=0)])
        stats = self.gradient_step(q_taken, target)
        self.update_target()
        return stats

    def set_state_value(self, value: float) -> None:
        """Start the state value ``V`` at ``value`` in both networks (the learned part of a
        greedy action's score: what the rest of the day is worth), so the first updates
        refine it rather than spend thousands of steps climbing to its scale."""
        with torch.no_grad():
            for network in (self.q_network, self.target_network):
                network.head[2].bias[0] = float(value)
