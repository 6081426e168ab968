"""A flat model's ONNX export: the graph of its network with the model's metadata.

The exported graph takes ``observations`` (``(batch, observation_size)`` float32) and answers
``q_values`` (``(batch, n_actions)``). The model's metadata (version, preset, env config,
shapes, hyperparameters, training summary) travels in the ONNX file's ``metadata_props``
under :data:`~rldispatch.agents.onnx_files.METADATA_KEY`, so an ``.onnx`` file is served like
the model file it came from (:mod:`rldispatch.agents.dqn.serving` runs it).
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.agents.dqn.serving import (
    FORMAT,
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxQFunction,
    QFunction,
    TorchQFunction,
    load_torch_model,
)
from rldispatch.agents.onnx_files import METADATA_KEY, OPSET_VERSION
from rldispatch.env import DispatchEnv, EnvConfig


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def metadata_dict(metadata: Any) -> dict[str, Any]:
    """A model's metadata as a JSON-ready dict."""
    if dataclasses.is_dataclass(metadata) and not isinstance(metadata, type):
        data = dataclasses.asdict(metadata)
    else:
        data = dict(vars(metadata))
    return json.loads(json.dumps(data, default=_jsonable))


def export_onnx_bytes(loaded_model: Any) -> bytes:
    """The ONNX graph of a loaded model's network, with its metadata."""
    import onnx
    import torch

    metadata = loaded_model.metadata
    network = loaded_model.network
    dummy = torch.zeros(1, int(metadata.observation_size), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no extra package (onnxscript).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (dummy,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET_VERSION,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    entry = graph.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": FORMAT, **metadata_dict(metadata)})
    graph.producer_name = "rldispatch"
    onnx.checker.check_model(graph)
    return graph.SerializeToString()


def reference_states(
    env_config: EnvConfig, preset: str | None, count: int, seed: int = 0
) -> np.ndarray:
    """``count`` observations met on preset days (cheapest insertion and random play)."""
    from rldispatch.policies.baselines import make_baseline

    env = DispatchEnv(preset=preset or "geneva", config=env_config)
    states: list[np.ndarray] = []
    day = 0
    while len(states) < count:
        policy = make_baseline("insertion" if day % 2 == 0 else "random", seed=seed + day)
        observation, _ = env.reset(seed=seed + day)
        terminated = False
        while not terminated and len(states) < count:
            states.append(observation)
            observation, _, terminated, _, _ = env.step(policy.act(env))
        day += 1
    return np.stack(states).astype(np.float32)


def max_q_difference(first: QFunction, second: QFunction, states: np.ndarray) -> float:
    """Largest absolute difference of the two Q-functions' values on ``states``."""
    return float(np.max(np.abs(first.q_values(states) - second.q_values(states))))


def export_checked(path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
    """A flat model file's ONNX graph, the number of real states it was checked on and the
    largest difference of its Q-values to PyTorch's there."""
    loaded, info = load_torch_model(path)
    model_bytes = export_onnx_bytes(loaded)
    states = reference_states(info.env_config, info.preset, check_states, seed)
    difference = max_q_difference(TorchQFunction(loaded), OnnxQFunction(model_bytes), states)
    return model_bytes, len(states), difference
