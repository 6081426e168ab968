"""Every hyperparameter of the DQN agent in one validated, frozen object.

Each field carries a help string (``DQNConfig.help(name)``); ``docs/training.md`` lists them.
A config travels as a flat JSON object of these fields (``to_dict`` / ``from_dict`` /
``load_config`` / ``save_config``); the auto-tuner's ``optimal_config.json`` is one.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rldispatch.files import atomic_write_json

ARCHITECTURES = ("mlp", "pair_scorer")


def _help(text: str, default: Any = MISSING) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of the Double-DQN agent and its training loop (steps are env steps)."""

    learning_rate: float = _help("Adam step size", 2.5e-4)
    gamma: float = _help("discount factor per decision", 0.99)
    batch_size: int = _help("transitions per gradient step", 64)
    buffer_size: int = _help("replay buffer capacity, in transitions", 100_000)
    learning_starts: int = _help(
        "transitions in the replay buffer before gradient steps begin", 2_000
    )
    train_frequency: int = _help("env steps between two rounds of gradient steps", 4)
    gradient_steps: int = _help("gradient steps per round", 1)
    target_update_interval: int = _help("env steps between two target-network updates", 2_000)
    tau: float = _help(
        "target update: target <- tau * online + (1 - tau) * target (1.0 = hard copy)", 1.0
    )
    epsilon_start: float = _help("exploration rate at the first step", 1.0)
    epsilon_end: float = _help("exploration rate once the decay is over", 0.02)
    epsilon_decay_steps: int = _help(
        "env steps over which epsilon falls linearly from start to end", 100_000
    )
    architecture: str = _help(
        "Q-network: 'mlp' (observation -> hidden layers -> one Q-value per action) or "
        "'pair_scorer' (one shared scorer applied to every driver-booking pair)",
        "mlp",
    )
    hidden_sizes: tuple[int, ...] = _help(
        "widths of the hidden layers: of the MLP, or of the pair scorer", (512, 256, 128)
    )
    context_size: int = _help(
        "pair_scorer only: width of the context vector computed from the whole observation", 32
    )
    dueling: bool = _help("split the last layer into a state value and action advantages", False)
    double_dqn: bool = _help(
        "Double DQN: the online network picks the next action, the target network scores it",
        True,
    )
    max_grad_norm: float = _help("clip the gradient's global L2 norm to this", 10.0)
    reward_scale: float = _help(
        "rewards are multiplied by this before learning (a day's reward of ~1000 in steps of "
        "~10 becomes steps of ~1); reported rewards are never scaled",
        0.1,
    )
    n_step: int = _help("n-step returns: bootstrap after this many decisions", 1)
    shape_lateness: bool = _help(
        "potential-based shaping: a late pickup's penalty is charged to the assignment that "
        "makes it late instead of when the driver sets off (same optimal policy)",
        False,
    )
    shape_cancellations: bool = _help(
        "potential-based shaping: a cancellation's penalty is charged when the last driver "
        "who could serve a visible booking is given other work, not when its window closes",
        False,
    )

    def __post_init__(self) -> None:
        _check_number(self, "learning_rate", low=0.0, low_open=True, high=1.0)
        _check_number(self, "gamma", low=0.0, high=1.0)
        _check_int(self, "batch_size", 1)
        _check_int(self, "buffer_size", 1)
        _check_int(self, "learning_starts", 0)
        _check_int(self, "train_frequency", 1)
        _check_int(self, "gradient_steps", 1)
        _check_int(self, "target_update_interval", 1)
        _check_number(self, "tau", low=0.0, low_open=True, high=1.0)
        _check_number(self, "epsilon_start", low=0.0, high=1.0)
        _check_number(self, "epsilon_end", low=0.0, high=1.0)
        _check_int(self, "epsilon_decay_steps", 0)
        _check_number(self, "max_grad_norm", low=0.0, low_open=True)
        _check_number(self, "reward_scale", low=0.0, low_open=True)
        _check_int(self, "n_step", 1)
        _check_int(self, "context_size", 1)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"dqn.architecture: must be one of {list(ARCHITECTURES)}, got {self.architecture!r}"
            )
        for name in ("dueling", "double_dqn", "shape_lateness", "shape_cancellations"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"dqn.{name}: must be true or false, got {getattr(self, name)!r}")
        hidden = self.hidden_sizes
        if isinstance(hidden, list):
            hidden = tuple(hidden)
            object.__setattr__(self, "hidden_sizes", hidden)
        if not isinstance(hidden, tuple) or not all(
            isinstance(width, int) and not isinstance(width, bool) and width >= 1
            for width in hidden
        ):
            raise ValueError(
                f"dqn.hidden_sizes: must be a list of positive integers, got {hidden!r}"
            )
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"dqn.batch_size: {self.batch_size} is larger than dqn.buffer_size "
                f"{self.buffer_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``hidden_sizes`` as a list)."""
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DQNConfig:
        """The config from a dict of fields; missing fields keep their defaults.

        :raises ValueError: for an unknown key or a bad value, naming the field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"dqn config: must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(
                    f"dqn.{key}: unknown hyperparameter; known ones are {sorted(known)}"
                )
        values = dict(data)
        if "hidden_sizes" in values and isinstance(values["hidden_sizes"], list):
            values["hidden_sizes"] = tuple(values["hidden_sizes"])
        return cls(**values)

    @classmethod
    def help(cls, name: str) -> str:
        """The help string of field ``name``."""
        for item in fields(cls):
            if item.name == name:
                return item.metadata["help"]
        raise KeyError(name)


def _check_int(config: DQNConfig, name: str, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
        object.__setattr__(config, name, value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"dqn.{name}: must be an integer >= {low}, got {value!r}")


def _check_number(
    config: DQNConfig,
    name: str,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"dqn.{name}: must be a number, got {value!r}")
    value = float(value)
    object.__setattr__(config, name, value)
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"dqn.{name}: must be a finite number in {interval}, got {value!r}")


def load_config(path: str | Path) -> DQNConfig:
    """Read a config JSON file (an object of :class:`DQNConfig` fields).

    :raises ValueError: for unreadable JSON, an unknown key or a bad value, naming the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON config ({error})") from error
    try:
        return DQNConfig.from_dict(data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def save_config(path: str | Path, config: DQNConfig) -> Path:
    """Write ``config`` as JSON, atomically; :func:`load_config` reads it back."""
    return atomic_write_json(path, config.to_dict())
