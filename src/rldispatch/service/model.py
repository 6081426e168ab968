"""A model file loaded for serving: a Q-function on NumPy, PyTorch or ONNX Runtime.

:func:`load_q_model` reads a model file written by
:func:`rldispatch.agents.dqn.model_file.save_model` (or its ONNX export, by the ``.onnx``
suffix), checks its size before reading, checks that its shapes agree with its env config and
that a probe forward pass answers ``(1, n_actions)`` finite values, and refuses it otherwise
with :class:`ModelLoadError` (the service then answers from the fallback). Values are also
checked per request: a model answering NaN on some state falls back for that answer.

:func:`load_served_model` takes either kind of model file: a pairwise one (format
``rldispatch-pairwise``) goes to :mod:`rldispatch.service.pairwise_model`, anything else to
:func:`load_q_model`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from rldispatch.env import EnvConfig

if TYPE_CHECKING:
    from rldispatch.service.pairwise_model import LoadedPairwiseQModel

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


def _probe(q_function: QFunction, info: ModelInfo) -> None:
    """One forward pass on a zero observation must answer one row of ``n_actions`` values."""
    try:
        q = np.asarray(q_function.q_values(np.zeros((1, info.observation_size), np.float32)))
    except Exception as error:  # noqa: BLE001 - any failure means the model cannot serve
        raise ModelLoadError(f"model: a probe forward pass failed: {error}") from error
    if q.shape != (1, info.n_actions):
        raise ModelLoadError(
            f"model: a probe forward pass answered shape {q.shape}, expected (1, {info.n_actions})"
        )
    if not np.all(np.isfinite(q)):
        raise ModelLoadError("model: a probe forward pass answered Q-values that are not finite")


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


def load_q_model(
    path: str | Path, runtime: str = "auto", max_bytes: int = MAX_MODEL_BYTES
) -> LoadedQModel:
    """Load a model file for serving.

    :param runtime: ``numpy`` (``DQNPolicy``'s NumPy forward pass), ``torch`` (eager PyTorch),
        ``onnx`` (ONNX Runtime) or ``auto``: ONNX Runtime for ``.onnx`` files, NumPy for model
        files. ``onnx`` with a model file exports it to ONNX in memory first.
    """
    from rldispatch.service import onnx_runtime

    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime: must be one of {RUNTIMES}, got {runtime!r}")
    path = Path(path)
    check_file_size(path, max_bytes)
    is_onnx = path.suffix.lower() == ".onnx"
    if is_onnx:
        if runtime not in ("auto", "onnx"):
            raise ModelLoadError(f"runtime: an .onnx file runs on ONNX Runtime, not {runtime}")
        q_function, info = onnx_runtime.load_onnx_file(path)
        chosen: Runtime = "onnx"
    else:
        loaded, info = load_torch_model(path)
        if runtime == "onnx":
            q_function = onnx_runtime.OnnxQFunction(onnx_runtime.export_onnx_bytes(loaded))
            chosen = "onnx"
        elif runtime == "torch":
            q_function = TorchQFunction(loaded)
            chosen = "torch"
        else:
            q_function = NumpyQFunction(loaded)
            chosen = "numpy"
    _probe(q_function, info)
    return LoadedQModel(q_function=q_function, info=info, path=path, runtime=chosen)


def load_served_model(
    path: str | Path, runtime: str = "auto", max_bytes: int = MAX_MODEL_BYTES
) -> LoadedQModel | LoadedPairwiseQModel:
    """Load a flat DQN model file (or its ``.onnx`` export) or a pairwise model file.

    A file whose header names the pairwise format is loaded as a pairwise model (runtime
    ``auto`` or ``numpy`` only); every other file, ``.onnx`` files included, goes to
    :func:`load_q_model` unchanged.
    """
    from rldispatch.agents.dqn.model_file import ModelFileError
    from rldispatch.agents.model_files import model_kind

    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime: must be one of {RUNTIMES}, got {runtime!r}")
    path = Path(path)
    check_file_size(path, max_bytes)
    if path.suffix.lower() != ".onnx":
        try:
            kind = model_kind(path)
        except ModelFileError:
            kind = None  # load_q_model says what is wrong with it
        if kind == "pairwise":
            from rldispatch.service.pairwise_model import load_pairwise_q_model

            return load_pairwise_q_model(path, runtime)
    return load_q_model(path, runtime, max_bytes)


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
