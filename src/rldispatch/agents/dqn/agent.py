"""The Double-DQN agent: masked epsilon-greedy acting and the learning update.

Invalid actions are masked in three places: the greedy argmax, the random exploration draw
(uniform over the valid actions only) and the next state's argmax/max in the target.
"""

from __future__ import annotations

import numpy as np
import torch

from rldispatch.agents.double_dqn import TargetNetworkAgent, UpdateStats, adam
from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.network import build_q_network, make_q_function
from rldispatch.agents.dqn.replay import ReplayBatch


class DQNAgent(TargetNetworkAgent):
    """Q-network, target network and optimizer for observations of ``observation_size``
    floats and ``n_actions`` discrete actions.

    :param seed: seeds the weight initialisation and the exploration draws.
    :param max_drivers: driver slots of the env (needed by the pair-scorer network).
    :param visible_slots: booking slots of the env (needed by the pair-scorer network).
    """

    def __init__(
        self,
        observation_size: int,
        n_actions: int,
        config: DQNConfig,
        seed: int = 0,
        max_drivers: int = 0,
        visible_slots: int = 0,
    ) -> None:
        self.config = config
        self.observation_size = int(observation_size)
        self.n_actions = int(n_actions)
        torch.manual_seed(seed)
        shapes = (observation_size, n_actions, max_drivers, visible_slots)
        self.q_network = build_q_network(config, *shapes)
        self.target_network = build_q_network(config, *shapes)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = adam(self.q_network, config.learning_rate)
        self.rng = np.random.default_rng(seed)
        self.q_function = make_q_function(self.q_network)
        self.updates = 0

    # --- acting ----------------------------------------------------------------------------

    def greedy_action(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        """The valid action with the highest Q-value."""
        return int(np.argmax(self.q_function.masked(observation, action_mask)))

    def act(self, observation: np.ndarray, action_mask: np.ndarray, epsilon: float) -> int:
        """Epsilon-greedy over the valid actions only."""
        if self.rng.random() < epsilon:
            return int(self.rng.choice(np.flatnonzero(action_mask)))
        return self.greedy_action(observation, action_mask)

    # --- learning --------------------------------------------------------------------------

    def td_target(self, batch: ReplayBatch) -> torch.Tensor:
        """``r + gamma^k * (1 - terminated) * Q_target(s', a*)`` with ``a*`` the best valid
        next action by the online network (Double DQN) or by the target network."""
        gamma = self.config.gamma
        next_observations, next_masks = batch.next_observations, batch.next_action_masks
        with torch.inference_mode():
            if self.config.double_dqn:
                online_q = self.q_network.masked_q_values(next_observations, next_masks)
                best_next = online_q.argmax(1)
                next_q = self.target_network.q_of_actions(next_observations, best_next)
            else:
                target_q = self.target_network.masked_q_values(next_observations, next_masks)
                next_q = target_q.max(1).values
            discount = gamma**batch.bootstrap_steps * (1.0 - batch.terminated)
            target = batch.rewards + discount * next_q
        return target.clone()  # a normal tensor: inference-mode ones cannot enter the loss

    def update(self, batch: ReplayBatch) -> UpdateStats:
        """One gradient step on the Huber loss between ``Q(s, a)`` and the TD target."""
        target = self.td_target(batch)
        q_taken = self.q_network.q_of_actions(batch.observations, batch.actions)
        return self.gradient_step(q_taken, target)
