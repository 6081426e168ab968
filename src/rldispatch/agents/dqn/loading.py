"""A flat model file (or its ONNX export) loaded for serving on the runtime asked for.

:func:`load_q_model` checks the file's size before reading, that its shapes agree with its env
config and that a probe forward pass answers ``(1, n_actions)`` finite values, and refuses it
otherwise with :class:`~rldispatch.agents.serving.ModelLoadError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rldispatch.agents.dqn.onnx_export import export_onnx_bytes
from rldispatch.agents.dqn.serving import (
    FLAT_RUNTIMES,
    LoadedQModel,
    ModelInfo,
    NumpyQFunction,
    OnnxQFunction,
    QFunction,
    Runtime,
    TorchQFunction,
    load_onnx_file,
    load_torch_model,
)
from rldispatch.agents.serving import MAX_MODEL_BYTES, ModelLoadError, check_file_size


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


def load_q_model(
    path: str | Path, runtime: str = "auto", max_bytes: int = MAX_MODEL_BYTES
) -> LoadedQModel:
    """Load a flat model file for serving.

    :param runtime: ``numpy`` (``DQNPolicy``'s NumPy forward pass), ``torch`` (eager PyTorch),
        ``onnx`` (ONNX Runtime) or ``auto``: ONNX Runtime for ``.onnx`` files, NumPy for model
        files. ``onnx`` with a model file exports it to ONNX in memory first.
    """
    if runtime not in FLAT_RUNTIMES:
        raise ModelLoadError(f"runtime: must be one of {FLAT_RUNTIMES}, got {runtime!r}")
    path = Path(path)
    check_file_size(path, max_bytes)
    if path.suffix.lower() == ".onnx":
        if runtime not in ("auto", "onnx"):
            raise ModelLoadError(f"runtime: an .onnx file runs on ONNX Runtime, not {runtime}")
        q_function, info = load_onnx_file(path, max_bytes)
        chosen: Runtime = "onnx"
    else:
        loaded, info = load_torch_model(path)
        if runtime == "onnx":
            q_function = OnnxQFunction(export_onnx_bytes(loaded))
            chosen = "onnx"
        elif runtime == "torch":
            q_function = TorchQFunction(loaded)
            chosen = "torch"
        else:
            q_function = NumpyQFunction(loaded)
            chosen = "numpy"
    _probe(q_function, info)
    return LoadedQModel(q_function=q_function, info=info, path=path, runtime=chosen)
