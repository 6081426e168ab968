"""Loading a model file for serving, whichever kind and runtime.

:func:`load_served_model` checks the file's size before reading, finds its kind (a model
file's header names its format, an ``.onnx`` export's metadata names its ONNX format) and
hands it to that kind (:meth:`~rldispatch.agents.kinds.AgentKind.load_served`) with a tiny
live day to probe it on. A file that cannot serve is refused with
:class:`~rldispatch.agents.serving.ModelLoadError` (the service then answers from the
fallback). Values are also checked per request: a model answering NaN on some state falls
back for that answer.
"""

from __future__ import annotations

from pathlib import Path

from rldispatch.agents.kinds import AgentKind
from rldispatch.agents.model_files import ModelFileError, model_kind
from rldispatch.agents.onnx_files import onnx_file_kind
from rldispatch.agents.serving import (
    MAX_MODEL_BYTES,
    RUNTIMES,
    ModelLoadError,
    ServedModel,
    check_file_size,
    check_runtime,
)
from rldispatch.domain import Booking
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.service.decisions.snapshot import LiveDay, LiveDriver, LiveState, live_env


def probe_state(day: LiveDay) -> LiveState:
    """A tiny live day in Geneva: one booking, two drivers near it, at the service day's start."""
    booking = Booking("probe", 0.0, (46.2044, 6.1432), (46.1935, 6.149), 10.0, (0.0, 40.0))
    drivers = (
        LiveDriver("probe-1", (46.21, 6.112), 0.0, (0.0, 300.0)),
        LiveDriver("probe-2", (46.189, 6.165), 5.0, (0.0, 300.0)),
    )
    return LiveState(drivers, (booking,), minute_of_day=day.start_min)


def probe_day(preset: str | None, config: EnvConfig) -> DispatchEnv:
    """The env of :func:`probe_state` on ``preset``'s service day, as a request's is built."""
    day = LiveDay.from_preset(preset)
    return live_env(probe_state(day), day, config).env


def served_kind(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> AgentKind:
    """The kind of a model file or of its ``.onnx`` export.

    :raises ModelLoadError: the file is not one of a registered kind.
    """
    if path.suffix.lower() == ".onnx":
        return onnx_file_kind(path, max_bytes)
    try:
        return model_kind(path)
    except ModelFileError as error:
        raise ModelLoadError(f"model: {error}") from error


def load_served_model(
    path: str | Path, runtime: str = "auto", max_bytes: int = MAX_MODEL_BYTES
) -> ServedModel:
    """Load a model file of any registered kind (or its ``.onnx`` export) for serving.

    :param runtime: one of :data:`~rldispatch.agents.serving.RUNTIMES` the model's kind
        serves on (``auto``: the kind's choice for the file).
    """
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"runtime: must be one of {RUNTIMES}, got {runtime!r}")
    path = Path(path)
    check_file_size(path, max_bytes)
    kind = served_kind(path, max_bytes)
    check_runtime(kind.name, runtime, kind.serving_runtimes)
    return kind.load_served(path, runtime, probe_day)
