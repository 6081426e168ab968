"""ONNX exports of model files, whichever kind: what their metadata is called, which kind an
``.onnx`` file came from, and the checked export ``export-onnx`` writes.

Each kind makes its own graph (:meth:`~rldispatch.agents.kinds.AgentKind.export_onnx`) and
stores the model's metadata in the file's ``metadata_props`` under :data:`METADATA_KEY`, with
the ``format`` its ONNX files name (``onnx_format``); a kind without one has no ONNX export
and is refused in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rldispatch.agents.kinds import AgentKind, kind_of_onnx_format
from rldispatch.agents.model_files import ModelFileError, model_kind
from rldispatch.agents.serving import MAX_MODEL_BYTES, ModelLoadError, check_file_size
from rldispatch.files import atomic_write_bytes

METADATA_KEY = "rldispatch.model"
"""The ``metadata_props`` entry holding a model's metadata (JSON, with its ``format``)."""
OPSET_VERSION = 17
MAX_ABS_DIFF = 1e-4
"""An export whose values differ from the model's own forward pass by more than this is
refused."""


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


def onnx_file_kind(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> AgentKind:
    """The kind an ``.onnx`` file was exported from.

    :raises ModelLoadError: the file names no format of a registered kind.
    """
    found = graph_format(path, max_bytes)
    kind = kind_of_onnx_format(found)
    if kind is None:
        raise ModelLoadError(
            f"model: {path} is not an ONNX export of an rldispatch model (format {found!r})"
        )
    return kind


@dataclass(frozen=True)
class ExportResult:
    path: Path
    states_checked: int
    max_abs_diff: float
    size_bytes: int


def export_onnx(
    model_path: str | Path, out_path: str | Path, check_states: int = 1000, seed: int = 0
) -> ExportResult:
    """Export a model file of any kind to ONNX, check it against the model's own forward pass
    on real states, write it atomically.

    :raises ModelLoadError: the model cannot be read, its kind has no ONNX export, or the two
        forward passes disagree by more than :data:`MAX_ABS_DIFF` on any value.
    """
    model_path = Path(model_path)
    check_file_size(model_path)
    try:
        kind = model_kind(model_path)
    except ModelFileError as error:
        raise ModelLoadError(f"model: {error}") from error
    model_bytes, checked, difference = kind.export_onnx(model_path, check_states, seed)
    if not difference <= MAX_ABS_DIFF:
        raise ModelLoadError(
            f"onnx: Q-values differ from the reference by {difference:.3g} (limit {MAX_ABS_DIFF})"
        )
    path = atomic_write_bytes(out_path, model_bytes)
    return ExportResult(path, checked, difference, len(model_bytes))
