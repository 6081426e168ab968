"""A flat DQN model served: its Q-function on NumPy (``DQNPolicy``'s forward pass), eager
PyTorch or ONNX Runtime (an ``.onnx`` export), its shapes checked against its env config, and
its player. :mod:`rldispatch.agents.dqn.loading` loads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rldispatch.agents.onnx_files import METADATA_KEY
from rldispatch.agents.serving import (
    MAX_MODEL_BYTES,
    InvalidValues,
    Lookahead,
    ModelLoadError,
    check_file_size,
    served_env_config,
    trained_road_network,
)
from rldispatch.env import EnvConfig

Runtime = Literal["numpy", "torch", "onnx"]
FLAT_RUNTIMES = ("auto", "numpy", "torch", "onnx")
"""``auto``: ONNX Runtime for an ``.onnx`` file, NumPy for a model file."""
FORMAT = "rldispatch-onnx/1"
"""The ``format`` a flat model's ONNX export names in its metadata."""
INPUT_NAME = "observations"
OUTPUT_NAME = "q_values"


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
    road_network: str | None = None
    """The road network file it was trained on (None: the travel formula)."""


@dataclass(frozen=True)
class LoadedQModel:
    """A flat DQN model ready to serve: fixed driver slots (``env_config.max_drivers``)."""

    q_function: QFunction
    info: ModelInfo
    path: Path
    runtime: Runtime

    can_look_ahead = False

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
    def road_network(self) -> str | None:
        return self.info.road_network

    @property
    def max_drivers(self) -> int | None:
        """The largest fleet it plays: its driver slots."""
        return self.env_config.max_drivers

    def serving_config(self, n_drivers: int, n_bookings: int | None = None) -> EnvConfig | None:
        """The env config to play a fleet of ``n_drivers`` on: its own (None: too large)."""
        return self.env_config if n_drivers <= self.env_config.max_drivers else None

    def new_player(self, lookahead: Lookahead | None = None) -> FlatPlayer:
        """A player; a flat model's answers never look ahead (``lookahead`` is ignored)."""
        return FlatPlayer(self)


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

    def slot_pick(self, env: Any, slot: int, drivers: np.ndarray) -> int:
        """The first of ``drivers``: the best by the model's values."""
        return 0

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


def model_info(
    version: Any,
    preset: Any,
    env_config: Mapping[str, Any],
    observation_size: Any,
    n_actions: Any,
    training_summary: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Check a model's declared shapes against its env config."""
    config = served_env_config(env_config)
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
        road_network=trained_road_network(training_summary),
    )


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
        metadata.training_summary,
    )
    return loaded, info


class OnnxQFunction:
    """Q-values from an ONNX model on ONNX Runtime (one thread: small networks run faster)."""

    def __init__(self, model_bytes: bytes, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = onnxruntime.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - ORT raises its own exception types
            raise ModelLoadError(f"model: ONNX Runtime cannot load the graph: {error}") from error
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
            raise ModelLoadError(
                f"model: the ONNX graph needs input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
                f"it has inputs {inputs} and outputs {outputs}"
            )
        self._outputs = [OUTPUT_NAME]

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(observations, dtype=np.float32)
        return self.session.run(self._outputs, {INPUT_NAME: batch})[0]


def read_onnx_metadata(model_bytes: bytes) -> ModelInfo:
    """The model info stored in a flat model's ONNX export
    (:func:`rldispatch.agents.dqn.onnx_export.export_onnx_bytes`)."""
    import onnx

    try:
        graph = onnx.load_from_string(model_bytes)
    except Exception as error:  # noqa: BLE001 - protobuf raises several types
        raise ModelLoadError(f"model: not an ONNX file: {error}") from error
    props = {entry.key: entry.value for entry in graph.metadata_props}
    if METADATA_KEY not in props:
        raise ModelLoadError(f"model: the ONNX file has no {METADATA_KEY!r} metadata")
    try:
        data = json.loads(props[METADATA_KEY])
        return model_info(
            data["version"],
            data.get("preset"),
            data["env_config"],
            data["observation_size"],
            data["n_actions"],
            data.get("training_summary") if isinstance(data, dict) else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ModelLoadError):
            raise
        raise ModelLoadError(f"model: bad {METADATA_KEY!r} metadata: {error}") from error


def load_onnx_file(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> tuple[OnnxQFunction, ModelInfo]:
    """An exported model and its info, sizes checked before reading."""
    check_file_size(path, max_bytes)
    model_bytes = path.read_bytes()
    info = read_onnx_metadata(model_bytes)
    return OnnxQFunction(model_bytes), info
