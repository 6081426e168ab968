"""What every Double-DQN agent here shares: the target network's update and checkpoint state."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TargetNetworkAgent:
    """An online Q-network, its target network (a Polyak average of it), the optimizer and
    the exploration RNG; subclasses set these attributes and ``config.tau``."""

    q_network: torch.nn.Module
    target_network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    updates: int
    config: Any

    def update_target(self) -> None:
        """Move the target network towards the online one (a copy when ``tau == 1``)."""
        tau = self.config.tau
        with torch.no_grad():
            for target, online in zip(
                self.target_network.parameters(), self.q_network.parameters(), strict=True
            ):
                if tau >= 1.0:
                    target.copy_(online)
                else:
                    target.lerp_(online, tau)

    def state_dict(self) -> dict[str, Any]:
        return {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # load_state_dict copies into the existing tensors, so NumPy views of them stay valid.
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])
