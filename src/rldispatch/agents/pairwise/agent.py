"""The pairwise Double-DQN agent: masked epsilon-greedy acting and the learning update.

Actions are ``0`` (wait) or ``1 + p`` (candidate pair ``p`` of the state). Invalid actions are
masked in three places, as in the flat agent: the greedy argmax (padded pairs score
``-inf``), the exploration draw (uniform over wait and the state's candidates) and the next
state's argmax in the target. Demonstrations (a teacher's actions, DQfD) add a large-margin
loss that keeps the teacher's action above every other by ``margin``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rldispatch.agents.pairwise.features import PairState
from rldispatch.agents.pairwise.network import (
    KnownReward,
    NumpyPairQ,
    PairBatch,
    PairQNetwork,
    choose,
    segment_max,
    segment_mean,
)
from rldispatch.agents.pairwise.replay import CounterfactualSample, PairReplaySample
from rldispatch.agents.target_network import TargetNetworkAgent

TIE_TOLERANCE = 1e-5
"""Scores this close count as tied (then the driver and booking ids decide)."""


@dataclass(frozen=True)
class PairDQNConfig:
    """Hyperparameters of the pairwise agent (the network and its update).

    :param hidden: width of the per-pair layers.
    :param head_hidden: width of the state head (value and wait).
    :param candidates_per_booking: drivers scored per visible booking (cheapest insertions).
    :param learning_rate: Adam step size.
    :param gamma: discount factor per decision.
    :param n_step: n-step returns: bootstrap after this many decisions.
    :param batch_size: transitions per gradient step.
    :param double_dqn: the online network picks the next action, the target network scores it.
    :param tau: target update ``target <- tau * online + (1 - tau) * target``.
    :param max_grad_norm: clip the gradient's global L2 norm to this.
    :param margin: DQfD margin between the teacher's action and any other (scaled reward).
    :param margin_weight: weight of the margin loss on demonstration transitions.
    :param advantage_l2: weight of a penalty on how far the learned part of the pairs' scores
        spreads within a state (or, once :meth:`PairDQNAgent.set_anchor` is called, departs
        from the anchor network's): it keeps the known rewards' (the anchor's) ranking unless
        the returns consistently say otherwise.
    """

    hidden: int = 64
    head_hidden: int = 64
    candidates_per_booking: int = 6
    learning_rate: float = 1e-4
    gamma: float = 0.9
    n_step: int = 3
    batch_size: int = 64
    double_dqn: bool = True
    tau: float = 0.005
    max_grad_norm: float = 10.0
    margin: float = 0.5
    margin_weight: float = 1.0
    advantage_l2: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hidden", "head_hidden", "candidates_per_booking", "n_step", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"pairwise.{name}: must be an integer >= 1, got {value!r}")
        for name, low, high in (
            ("learning_rate", 0.0, 1.0),
            ("gamma", 0.0, 1.0),
            ("tau", 0.0, 1.0),
            ("max_grad_norm", 0.0, math.inf),
            ("margin", 0.0, math.inf),
            ("margin_weight", 0.0, math.inf),
            ("advantage_l2", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"pairwise.{name}: must be a number, got {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"pairwise.{name}: must be in [{low}, {high}], got {value!r}")
        if not isinstance(self.double_dqn, bool):
            raise ValueError(f"pairwise.double_dqn: must be true or false, got {self.double_dqn!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairDQNConfig:
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"pairwise: unknown hyperparameters {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class UpdateStats:
    td_loss: float
    margin_loss: float
    q_mean: float


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


def learned_spread(network: PairQNetwork, states: PairBatch, pair_q: torch.Tensor) -> torch.Tensor:
    """The learned part of each pair's score minus its state's mean (the known rewards
    removed): how the network reorders the pairs."""
    learned = pair_q - network.known_pair_reward(states.pairs)
    mean = segment_mean(learned, states.pair_state, states.n_states)
    return learned - mean[states.pair_state]


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
        self, config: PairDQNConfig, seed: int = 0, known_reward: KnownReward | None = None
    ) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.q_network = PairQNetwork(config.hidden, config.head_hidden, known_reward)
        self.target_network = PairQNetwork(config.hidden, config.head_hidden, known_reward)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.learning_rate)
        self.rng = np.random.default_rng(seed)
        self.q_function = NumpyPairQ(self.q_network)
        self.anchor_network: PairQNetwork | None = None
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

    def losses(self, sample: PairReplaySample) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(td_loss, margin_loss + advantage penalty, Q of the actions taken)`` of a sample."""
        target = self.td_target(sample)
        states = sample.states
        wait_q, pair_q = self.q_network(states)
        taken_pair = sample.action_pairs
        is_wait = taken_pair < 0
        q_taken = torch.where(is_wait, wait_q, pair_q[taken_pair.clamp(min=0)])
        td_loss = F.smooth_l1_loss(q_taken, target)
        demo = sample.demonstration
        if demo.any() and self.config.margin_weight > 0:
            margin = self.config.margin
            # Every action but the one taken gets the margin added.
            pair_margin = torch.full_like(pair_q, margin)
            pair_margin[taken_pair[~is_wait]] = 0.0
            state = sample.states.pair_state
            best_pair = segment_max(pair_q + pair_margin, state, sample.states.n_states)
            best = torch.maximum(best_pair, wait_q + torch.where(is_wait, 0.0, margin))
            margin_loss = self.config.margin_weight * (best - q_taken)[demo].mean()
        else:
            margin_loss = torch.zeros(())
        if self.config.advantage_l2 > 0 and pair_q.numel():
            spread = learned_spread(self.q_network, states, pair_q)
            if self.anchor_network is not None:
                with torch.no_grad():
                    _, anchor_q = self.anchor_network(states)
                    spread = spread - learned_spread(self.anchor_network, states, anchor_q)
            margin_loss = margin_loss + self.config.advantage_l2 * spread.pow(2).mean()
        return td_loss, margin_loss, q_taken

    def set_anchor(self) -> None:
        """Freeze a copy of the online network: from now on ``advantage_l2`` keeps the ranking
        of the pairs near this copy's (by default, near the known rewards')."""
        self.anchor_network = copy.deepcopy(self.q_network)
        self.anchor_network.requires_grad_(False)

    def counterfactual_update(self, sample: CounterfactualSample) -> float:
        """One gradient step fitting, within each state, the differences between the scores
        of the actions tried to the differences between their returns (the scores' common
        level is left to the TD updates)."""
        wait_q, pair_q = self.q_network(sample.states)
        offsets = sample.states.pair_offsets
        rows = (offsets[:, None] + sample.actions - 1).clamp(0, max(pair_q.shape[0] - 1, 0))
        pair_part = pair_q[rows] if pair_q.numel() else torch.zeros_like(sample.returns)
        q = torch.where(sample.actions == 0, wait_q[:, None], pair_part)
        valid = sample.valid.to(q.dtype)
        count = valid.sum(1, keepdim=True).clamp(min=1.0)
        q_centred = q - (q * valid).sum(1, keepdim=True) / count
        returns = sample.returns
        returns_centred = returns - (returns * valid).sum(1, keepdim=True) / count
        loss = ((q_centred - returns_centred).pow(2) * valid).sum() / valid.sum().clamp(min=1.0)
        if self.config.advantage_l2 > 0 and pair_q.numel():
            # The pairs not tried keep the known rewards' ranking unless the tried ones move it.
            spread = learned_spread(self.q_network, sample.states, pair_q)
            loss = loss + self.config.advantage_l2 * spread.pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.update_target()
        return loss.item()

    def update(self, *samples: PairReplaySample) -> UpdateStats:
        """One gradient step on the summed losses of one or more samples (e.g. the agent's
        own experience and demonstrations)."""
        td_total = torch.zeros(())
        margin_total = torch.zeros(())
        q_means = []
        for sample in samples:
            td_loss, margin_loss, q_taken = self.losses(sample)
            td_total = td_total + td_loss
            margin_total = margin_total + margin_loss
            q_means.append(q_taken.detach().mean().item())
        loss = td_total + margin_total
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.update_target()
        self.updates += 1
        return UpdateStats(
            td_loss=td_total.item(), margin_loss=margin_total.item(), q_mean=float(np.mean(q_means))
        )

    def set_state_value(self, value: float) -> None:
        """Start the state value ``V`` at ``value`` in both networks (the learned part of a
        greedy action's score: what the rest of the day is worth), so the first updates
        refine it rather than spend thousands of steps climbing to its scale."""
        with torch.no_grad():
            for network in (self.q_network, self.target_network):
                network.head[2].bias[0] = float(value)
