"""Every hyperparameter of the DQN agent in one validated, frozen object.

Each field carries a help string (``DQNConfig.help(name)``); ``docs/training.md`` lists them.
A config travels as a flat JSON object of these fields (``to_dict`` / ``from_dict`` /
``load_config`` / ``save_config``); the auto-tuner's ``optimal_config.json`` is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rldispatch.agents.config_fields import ConfigError, HyperparameterConfig, hyperparameter

ARCHITECTURES = ("mlp", "pair_scorer")


@dataclass(frozen=True)
class DQNConfig(HyperparameterConfig):
    """Hyperparameters of the Double-DQN agent and its training loop (steps are env steps)."""

    prefix: ClassVar[str] = "dqn"

    learning_rate: float = hyperparameter(
        "Adam step size",
        2.5e-4,
        kind="float",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    gamma: float = hyperparameter(
        "discount factor per decision",
        0.99,
        kind="float",
        low=0.0,
        high=1.0,
    )
    batch_size: int = hyperparameter(
        "transitions per gradient step",
        64,
        kind="int",
        low=1,
    )
    buffer_size: int = hyperparameter(
        "replay buffer capacity, in transitions",
        100_000,
        kind="int",
        low=1,
    )
    learning_starts: int = hyperparameter(
        "transitions in the replay buffer before gradient steps begin",
        2_000,
        kind="int",
        low=0,
    )
    train_frequency: int = hyperparameter(
        "env steps between two rounds of gradient steps",
        4,
        kind="int",
        low=1,
    )
    gradient_steps: int = hyperparameter(
        "gradient steps per round",
        1,
        kind="int",
        low=1,
    )
    target_update_interval: int = hyperparameter(
        "env steps between two target-network updates",
        2_000,
        kind="int",
        low=1,
    )
    tau: float = hyperparameter(
        "target update: target <- tau * online + (1 - tau) * target (1.0 = hard copy)",
        1.0,
        kind="float",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    epsilon_start: float = hyperparameter(
        "exploration rate at the first step",
        1.0,
        kind="float",
        low=0.0,
        high=1.0,
    )
    epsilon_end: float = hyperparameter(
        "exploration rate once the decay is over",
        0.02,
        kind="float",
        low=0.0,
        high=1.0,
    )
    epsilon_decay_steps: int = hyperparameter(
        "env steps over which epsilon falls linearly from start to end",
        100_000,
        kind="int",
        low=0,
    )
    architecture: str = hyperparameter(
        "Q-network: 'mlp' (observation -> hidden layers -> one Q-value per action) or "
        "'pair_scorer' (one shared scorer applied to every driver-booking pair)",
        "mlp",
        kind="choice",
        choices=ARCHITECTURES,
    )
    hidden_sizes: tuple[int, ...] = hyperparameter(
        "widths of the hidden layers: of the MLP, or of the pair scorer",
        (512, 256, 128),
        kind="int_tuple",
        low=1,
    )
    context_size: int = hyperparameter(
        "pair_scorer only: width of the context vector computed from the whole observation",
        32,
        kind="int",
        low=1,
    )
    dueling: bool = hyperparameter(
        "split the last layer into a state value and action advantages",
        False,
        kind="bool",
    )
    double_dqn: bool = hyperparameter(
        "Double DQN: the online network picks the next action, the target network scores it",
        True,
        kind="bool",
    )
    max_grad_norm: float = hyperparameter(
        "clip the gradient's global L2 norm to this",
        10.0,
        kind="float",
        low=0.0,
        low_open=True,
    )
    reward_scale: float = hyperparameter(
        "rewards are multiplied by this before learning (a day's reward of ~1000 in steps of "
        "~10 becomes steps of ~1); reported rewards are never scaled",
        0.1,
        kind="float",
        low=0.0,
        low_open=True,
    )
    n_step: int = hyperparameter(
        "n-step returns: bootstrap after this many decisions",
        1,
        kind="int",
        low=1,
    )
    shape_lateness: bool = hyperparameter(
        "potential-based shaping: a late pickup's penalty is charged to the assignment that "
        "makes it late instead of when the driver sets off (same optimal policy)",
        False,
        kind="bool",
    )
    shape_cancellations: bool = hyperparameter(
        "potential-based shaping: a cancellation's penalty is charged when the last driver "
        "who could serve a visible booking is given other work, not when its window closes",
        False,
        kind="bool",
    )

    def check(self) -> None:
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"dqn.batch_size: {self.batch_size} is larger than dqn.buffer_size "
                f"{self.buffer_size}"
            )


def load_config(path: str | Path) -> DQNConfig:
    """Read a config JSON file (an object of :class:`DQNConfig` fields)."""
    return DQNConfig.load(path)


def save_config(path: str | Path, config: DQNConfig) -> Path:
    """Write ``config`` as JSON, atomically; :func:`load_config` reads it back."""
    return config.save(path)
