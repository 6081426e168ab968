"""ONNX export of a model file (either kind) and a flat model's Q-function on ONNX Runtime.

A pairwise model's graph and scorer are in :mod:`rldispatch.agents.pairwise.onnx_export`;
:func:`export_onnx` writes either.

The exported graph takes ``observations`` (``(batch, observation_size)`` float32) and answers
``q_values`` (``(batch, n_actions)``). The model's metadata (version, preset, env config,
shapes, hyperparameters, training summary) travels in the ONNX file's ``metadata_props``
under :data:`METADATA_KEY`, so an ``.onnx`` file is served like the model file it came from.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_bytes
from rldispatch.service.model import (
    MAX_MODEL_BYTES,
    ModelInfo,
    ModelLoadError,
    QFunction,
    TorchQFunction,
    check_file_size,
    load_torch_model,
    model_info,
)

METADATA_KEY = "rldispatch.model"
FORMAT = "rldispatch-onnx/1"
INPUT_NAME = "observations"
OUTPUT_NAME = "q_values"
OPSET_VERSION = 17
MAX_ABS_DIFF = 1e-4
"""An export whose Q-values differ from PyTorch's by more than this is refused."""


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


def read_onnx_metadata(model_bytes: bytes) -> ModelInfo:
    """The model info stored in an ONNX file written by :func:`export_onnx_bytes`."""
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
        )
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ModelLoadError):
            raise
        raise ModelLoadError(f"model: bad {METADATA_KEY!r} metadata: {error}") from error


def graph_format(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> str | None:
    """The ``format`` in an ONNX file's rldispatch metadata (None when it has none or is not
    readable: loading it then says why)."""
    import onnx

    try:
        check_file_size(path, max_bytes)
        graph = onnx.load(str(path), load_external_data=False)
        props = {entry.key: entry.value for entry in graph.metadata_props}
        data = json.loads(props.get(METADATA_KEY, "{}"))
    except Exception:  # noqa: BLE001 - any unreadable file is refused later, with the reason
        return None
    return data.get("format") if isinstance(data, dict) else None


def load_onnx_file(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> tuple[OnnxQFunction, ModelInfo]:
    """An exported model and its info, sizes checked before reading."""
    check_file_size(path, max_bytes)
    model_bytes = path.read_bytes()
    info = read_onnx_metadata(model_bytes)
    return OnnxQFunction(model_bytes), info


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


@dataclass(frozen=True)
class ExportResult:
    path: Path
    states_checked: int
    max_abs_diff: float
    size_bytes: int


def export_onnx(
    model_path: str | Path, out_path: str | Path, check_states: int = 1000, seed: int = 0
) -> ExportResult:
    """Export a model file (either kind) to ONNX, check it against the reference forward pass
    on real states (PyTorch for a flat model, NumPy for a pairwise one), write atomically.

    Raises :class:`ModelLoadError` when the model cannot be read or the two runtimes disagree
    by more than :data:`MAX_ABS_DIFF` on any Q-value.
    """
    from rldispatch.agents.model_files import ModelFileError, model_kind

    model_path = Path(model_path)
    check_file_size(model_path)
    try:
        kind = model_kind(model_path).name
    except ModelFileError:
        kind = "dqn"  # the flat loader says what is wrong with it
    model_bytes, checked, difference = ONNX_EXPORTS[kind](model_path, check_states, seed)
    if not difference <= MAX_ABS_DIFF:
        raise ModelLoadError(
            f"onnx: Q-values differ from the reference by {difference:.3g} (limit {MAX_ABS_DIFF})"
        )
    path = atomic_write_bytes(out_path, model_bytes)
    return ExportResult(path, checked, difference, len(model_bytes))


def _pairwise_export(path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
    from rldispatch.agents.pairwise.model_file import PairwiseModelError, load_pairwise_model
    from rldispatch.agents.pairwise.onnx_export import (
        OnnxPairQ,
        export_pairwise_onnx_bytes,
        max_difference_on_days,
    )

    try:
        loaded = load_pairwise_model(path)
    except PairwiseModelError as error:
        raise ModelLoadError(f"model: {error}") from error
    model_bytes = export_pairwise_onnx_bytes(loaded.network, loaded.metadata)
    checked, difference = max_difference_on_days(loaded, OnnxPairQ(model_bytes), check_states, seed)
    return model_bytes, checked, difference


def _flat_export(path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
    loaded, info = load_torch_model(path)
    model_bytes = export_onnx_bytes(loaded)
    states = reference_states(info.env_config, info.preset, check_states, seed)
    difference = max_q_difference(TorchQFunction(loaded), OnnxQFunction(model_bytes), states)
    return model_bytes, len(states), difference


def _guided_export(path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
    raise ModelLoadError(
        f"onnx: {path} is a guided-reopt model: its decisions are OR-Tools re-plans, which ONNX "
        "cannot hold (its small network runs on NumPy)"
    )


ONNX_EXPORTS = {"pairwise": _pairwise_export, "dqn": _flat_export, "guided-reopt": _guided_export}
"""How each registered agent kind is exported and checked: ``(ONNX bytes, states checked,
largest Q-value difference)``."""
