"""Loading a model file for serving, whichever kind and runtime.

:func:`load_q_model` reads a flat model file written by
:func:`rldispatch.agents.dqn.model_file.save_model` (or its ONNX export, by the ``.onnx``
suffix), checks its size before reading, checks that its shapes agree with its env config and
that a probe forward pass answers ``(1, n_actions)`` finite values, and refuses it otherwise
with :class:`~rldispatch.service.model.ModelLoadError` (the service then answers from the
fallback). Values are also checked per request: a model answering NaN on some state falls
back for that answer.

:func:`load_served_model` takes either kind: a pairwise model file (format
``rldispatch-pairwise``) or its ONNX export goes to :mod:`rldispatch.service.pairwise_model`,
anything else to :func:`load_q_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rldispatch.service import onnx_runtime
from rldispatch.service.model import (
    MAX_MODEL_BYTES,
    RUNTIMES,
    LoadedQModel,
    ModelInfo,
    ModelLoadError,
    NumpyQFunction,
    QFunction,
    Runtime,
    TorchQFunction,
    check_file_size,
    load_torch_model,
)

if TYPE_CHECKING:  # imports PyTorch: loaded only with a pairwise model
    from rldispatch.service.pairwise_model import LoadedPairwiseQModel


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
    """Load a model file for serving.

    :param runtime: ``numpy`` (``DQNPolicy``'s NumPy forward pass), ``torch`` (eager PyTorch),
        ``onnx`` (ONNX Runtime) or ``auto``: ONNX Runtime for ``.onnx`` files, NumPy for model
        files. ``onnx`` with a model file exports it to ONNX in memory first.
    """
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

    A file whose header names the pairwise format, or an ONNX file exported from one, is
    loaded as a pairwise model; every other file goes to :func:`load_q_model` unchanged.
    """
    from rldispatch.agents.model_files import ModelFileError, model_kind

    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime: must be one of {RUNTIMES}, got {runtime!r}")
    path = Path(path)
    check_file_size(path, max_bytes)
    if path.suffix.lower() == ".onnx":
        kind = onnx_kind(path, max_bytes)
    else:
        try:
            kind = model_kind(path).name
        except ModelFileError:
            kind = None  # the flat loader says what is wrong with it
    return SERVED_LOADERS.get(kind, load_q_model)(path, runtime, max_bytes)


def onnx_kind(path: Path, max_bytes: int) -> str | None:
    """The agent kind an ``.onnx`` export was made from (None: not one of ours)."""
    from rldispatch.agents.pairwise.onnx_export import FORMAT as PAIRWISE_ONNX
    from rldispatch.service.onnx_runtime import FORMAT as FLAT_ONNX
    from rldispatch.service.onnx_runtime import graph_format

    return {PAIRWISE_ONNX: "pairwise", FLAT_ONNX: "dqn"}.get(graph_format(path, max_bytes))


def _load_pairwise(path: Path, runtime: str, max_bytes: int) -> LoadedPairwiseQModel:
    from rldispatch.service.pairwise_model import load_pairwise_q_model

    return load_pairwise_q_model(path, runtime)


def _load_guided(path: Path, runtime: str, max_bytes: int) -> Any:
    from rldispatch.service.guided_model import load_guided_served_model

    return load_guided_served_model(path, runtime)


SERVED_LOADERS: dict[str | None, Callable[[Path, str, int], Any]] = {
    "pairwise": _load_pairwise,
    "dqn": load_q_model,
    "guided-reopt": _load_guided,
}
"""How the service loads each registered agent kind (the runtimes are the service's own)."""
