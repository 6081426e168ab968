"""What every served model shares: the refusal error, runtimes, size check, and the flat
model's Q-functions (NumPy, PyTorch) and checked shapes.

Loading is in :mod:`rldispatch.service.loading`, which builds on this module,
:mod:`rldispatch.service.onnx_runtime` (flat ONNX) and
:mod:`rldispatch.service.pairwise_model`; none of them imports it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rldispatch.env import EnvConfig

Runtime = Literal["numpy", "torch", "onnx"]
RUNTIMES = ("auto", "numpy", "torch", "onnx")
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""Model files above this size are refused before being read."""


class ModelLoadError(ValueError):
    """A model file that cannot be served: missing, too large, foreign or inconsistent."""


class QFunction(Protocol):
    """Q-values of a batch of observations: ``(batch, obs) float32 -> (batch, actions)``."""

    def q_values(self, observations: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelInfo:
    """What the service needs to know about a model, whatever runs it."""

    version: str
    preset: str | None
    env_config: EnvConfig
    observation_size: int
    n_actions: int


@dataclass(frozen=True)
class LoadedQModel:
    """A flat DQN model ready to serve: fixed driver slots (``env_config.max_drivers``)."""

    q_function: QFunction
    info: ModelInfo
    path: Path
    runtime: Runtime

    @property
    def kind(self) -> Literal["dqn"]:
        return "dqn"

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def preset(self) -> str | None:
        return self.info.preset

    @property
    def env_config(self) -> EnvConfig:
        return self.info.env_config

    @property
    def max_drivers(self) -> int | None:
        """The largest fleet it plays: its driver slots."""
        return self.env_config.max_drivers

    def serving_config(self, n_drivers: int, n_bookings: int | None = None) -> EnvConfig | None:
        """The env config to play a fleet of ``n_drivers`` on: its own (None: too large)."""
        return self.env_config if n_drivers <= self.env_config.max_drivers else None

    def new_player(self) -> FlatPlayer:
        return FlatPlayer(self)


class InvalidValues(ValueError):
    """A model answered values that cannot be used (not finite)."""


class FlatPlayer:
    """A flat model deciding on a live env: its values for one booking, or its action."""

    def __init__(self, model: LoadedQModel) -> None:
        self.model = model

    def q_values(self, env: Any) -> np.ndarray:
        """Q-values of the env's state, one per action."""
        q = np.asarray(self.model.q_function.q_values(env.observation()[None, :]))
        if q.shape != (1, self.model.env_config.n_actions):
            raise ValueError(f"Q-values of shape {q.shape}, expected one row per action")
        return q[0]

    def slot_values(self, env: Any, slot: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The drivers who may take the booking in ``slot``, best first, their values and
        the value of waiting."""
        q = self.q_values(env)
        feasible = np.flatnonzero(env.table.feasible[:, slot])
        actions = 1 + feasible * env.config.visible_slots + slot
        order = np.argsort(-q[actions], kind="stable")
        return feasible[order], q[actions][order], float(q[0])

    def act(self, env: Any) -> int:
        """The action ``evaluate`` would take (the NumPy runtime plays ``DQNPolicy`` itself)."""
        policy = getattr(self.model.q_function, "policy", None)
        if policy is not None:
            return int(policy.act(env))
        q = self.q_values(env)
        mask = env.action_masks()
        if not np.all(np.isfinite(q[mask])):
            raise InvalidValues("invalid_action")
        return int(np.argmax(np.where(mask, q, -np.inf)))


def env_config_from_dict(data: Mapping[str, Any]) -> EnvConfig:
    """An :class:`EnvConfig` from its dict form in model metadata."""
    from rldispatch.agents.dqn import model_file

    if not isinstance(data, Mapping):
        raise ModelLoadError("env_config: must be an object")
    try:
        return model_file.env_config_from_dict(dict(data))
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"env_config: {error}") from error


def model_info(
    version: Any,
    preset: Any,
    env_config: Mapping[str, Any],
    observation_size: Any,
    n_actions: Any,
) -> ModelInfo:
    """Check a model's declared shapes against its env config."""
    config = env_config_from_dict(env_config)
    if int(observation_size) != config.observation_size:
        raise ModelLoadError(
            f"observation_size: the model takes {observation_size} floats but its env config "
            f"gives {config.observation_size}"
        )
    if int(n_actions) != config.n_actions:
        raise ModelLoadError(
            f"n_actions: the model answers {n_actions} actions but its env config has "
            f"{config.n_actions}"
        )
    return ModelInfo(
        version=str(version),
        preset=None if preset is None else str(preset),
        env_config=config,
        observation_size=int(observation_size),
        n_actions=int(n_actions),
    )


def check_file_size(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> int:
    """The file's size; :class:`ModelLoadError` when it is missing, empty or too large."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ModelLoadError(f"model: no file at {path}") from error
    except OSError as error:
        raise ModelLoadError(f"model: cannot read {path}: {error.strerror}") from error
    if not path.is_file():
        raise ModelLoadError(f"model: {path} is not a file")
    if size == 0:
        raise ModelLoadError(f"model: {path} is empty")
    if size > max_bytes:
        raise ModelLoadError(f"model: {path} has {size} bytes, more than the limit {max_bytes}")
    return size


class NumpyQFunction:
    """Q-values through ``DQNPolicy.q_values``: the network's forward pass in NumPy."""

    def __init__(self, loaded_model: Any) -> None:
        from rldispatch.agents.dqn.policy import DQNPolicy

        self.policy = DQNPolicy(loaded_model)

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy.q_values(observations))


class TorchQFunction:
    """Q-values from the PyTorch network, eager, in inference mode."""

    def __init__(self, loaded_model: Any) -> None:
        self.network = loaded_model.network

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
            return self.network(batch).numpy()


def load_torch_model(path: Path) -> tuple[Any, ModelInfo]:
    """A PyTorch model file (``LoadedModel``) and its checked info."""
    from rldispatch.agents.dqn.model_file import ModelFileError, load_model

    try:
        loaded = load_model(path)
    except ModelFileError as error:
        raise ModelLoadError(f"model: {error}") from error
    metadata = loaded.metadata
    info = model_info(
        metadata.version,
        metadata.preset,
        metadata.env_config,
        metadata.observation_size,
        metadata.n_actions,
    )
    return loaded, info


def driver_slots(n_drivers: int) -> int:
    """Driver slots of an env playing ``n_drivers`` beyond a model's own: the next power of two
    (a few envs per thread at most, whatever the fleet sizes requests bring)."""
    return 1 << (max(int(n_drivers), 1) - 1).bit_length()


MAX_PAIRWISE_BOOKING_SLOTS = 64
"""Booking slots a pairwise model is served with at most (its candidates grow with them)."""


def pairwise_booking_slots(model_slots: int, n_bookings: int) -> int:
    """Booking slots to serve a pairwise model a request of ``n_bookings`` open bookings: all
    of them when they fit in :data:`MAX_PAIRWISE_BOOKING_SLOTS` (a power of two, at least the
    model's own), so the booking asked about is always among the visible ones."""
    if n_bookings <= model_slots:
        return model_slots
    return max(model_slots, min(driver_slots(n_bookings), MAX_PAIRWISE_BOOKING_SLOTS))


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is not finite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None
