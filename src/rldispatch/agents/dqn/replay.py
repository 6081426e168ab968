"""Experience replay: a preallocated ring buffer of transitions, stored a day at a time.

Each transition stores the next state's action mask, so the learning target can take its
max/argmax over the actions that were valid there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rldispatch.agents.double_dqn import n_step_returns


@dataclass(frozen=True)
class ReplayBatch:
    """A sample of transitions as tensors (first axis: the transition).

    ``rewards`` are the (scaled, n-step discounted) returns until the bootstrap state;
    ``bootstrap_steps`` is how many decisions later that state comes (``n`` or fewer at the
    end of a day); ``terminated`` is 1.0 when the day ended before it.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    next_action_masks: torch.Tensor
    terminated: torch.Tensor
    bootstrap_steps: torch.Tensor


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions in preallocated NumPy arrays.

    :param seed: seeds the sampling generator.
    """

    def __init__(self, capacity: int, observation_size: int, n_actions: int, seed: int = 0):
        self.capacity = int(capacity)
        self.observation_size = int(observation_size)
        self.n_actions = int(n_actions)
        self.observations = np.zeros((capacity, observation_size), dtype=np.float32)
        self.next_observations = np.zeros((capacity, observation_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.bootstrap_steps = np.ones(capacity, dtype=np.float32)
        self.next_action_masks = np.zeros((capacity, n_actions), dtype=bool)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        observation: np.ndarray,
        action: int,
        reward: float,
        next_observation: np.ndarray,
        next_action_mask: np.ndarray,
        terminated: bool,
        bootstrap_steps: int = 1,
    ) -> None:
        """Store one transition, overwriting the oldest once full."""
        index = self.position
        self.observations[index] = observation
        self.actions[index] = action
        self.rewards[index] = reward
        self.next_observations[index] = next_observation
        self.next_action_masks[index] = next_action_mask
        self.terminated[index] = float(terminated)
        self.bootstrap_steps[index] = bootstrap_steps
        self.position = (index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_day(
        self,
        observations: np.ndarray,
        action_masks: np.ndarray,
        actions: Sequence[int],
        rewards: Sequence[float],
        gamma: float,
        n_step: int,
    ) -> None:
        """Store one finished day with n-step returns.

        :param observations: ``(T + 1, obs)``: the state of each decision, then the last one.
        :param action_masks: ``(T + 1, actions)``: their action masks.
        """
        returns, discounts, offsets = n_step_returns(rewards, gamma, n_step)
        for t, action in enumerate(actions):
            bootstrap = t + int(offsets[t])
            self.add(
                observations[t],
                int(action),
                float(returns[t]),
                observations[bootstrap],
                action_masks[bootstrap],
                terminated=discounts[t] == 0.0,
                bootstrap_steps=int(offsets[t]),
            )

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly, with replacement."""
        if self.size == 0:
            raise ValueError("replay buffer: cannot sample from an empty buffer")
        indices = self.rng.integers(0, self.size, size=batch_size)
        return ReplayBatch(
            observations=torch.from_numpy(self.observations[indices]),
            actions=torch.from_numpy(self.actions[indices]),
            rewards=torch.from_numpy(self.rewards[indices]),
            next_observations=torch.from_numpy(self.next_observations[indices]),
            next_action_masks=torch.from_numpy(self.next_action_masks[indices]),
            terminated=torch.from_numpy(self.terminated[indices]),
            bootstrap_steps=torch.from_numpy(self.bootstrap_steps[indices]),
        )

    # --- checkpoints ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the buffer (action masks bit-packed) and the sampler's state."""
        filled = slice(0, self.size)
        return {
            "capacity": self.capacity,
            "position": self.position,
            "size": self.size,
            "observations": torch.from_numpy(self.observations[filled]),
            "next_observations": torch.from_numpy(self.next_observations[filled]),
            "actions": torch.from_numpy(self.actions[filled]),
            "rewards": torch.from_numpy(self.rewards[filled]),
            "terminated": torch.from_numpy(self.terminated[filled]),
            "bootstrap_steps": torch.from_numpy(self.bootstrap_steps[filled]),
            "next_action_masks_packed": torch.from_numpy(
                np.packbits(self.next_action_masks[filled], axis=1)
            ),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"replay buffer: checkpoint capacity {state['capacity']} differs from "
                f"buffer_size {self.capacity}"
            )
        size = int(state["size"])
        filled = slice(0, size)
        self.observations[filled] = state["observations"].numpy()
        self.next_observations[filled] = state["next_observations"].numpy()
        self.actions[filled] = state["actions"].numpy()
        self.rewards[filled] = state["rewards"].numpy()
        self.terminated[filled] = state["terminated"].numpy()
        self.bootstrap_steps[filled] = state["bootstrap_steps"].numpy()
        self.next_action_masks[filled] = np.unpackbits(
            state["next_action_masks_packed"].numpy(), axis=1, count=self.n_actions
        ).astype(bool)
        self.size = size
        self.position = int(state["position"])
        self.rng.bit_generator.state = state["rng"]
