"""The container both kinds of model file share: `safetensors` with rldispatch metadata.

A model file is an 8-byte header length, a JSON header and the raw tensors (loading runs no
code). The header's ``__metadata__`` names the ``format`` (``rldispatch-dqn`` or
``rldispatch-pairwise``), its ``format_version`` and the kind's own ``metadata`` as JSON.
Files are written atomically (temporary file, then rename). Each kind checks its own metadata
(``agents/dqn/model_file.py``, ``agents/pairwise/model_file.py``).

PyTorch is imported by the functions that read or write tensors, not with this module: what
reads a header alone (the service's start, ``rldispatch serve`` refusing an address) loads
without it.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_bytes
from rldispatch.rewards import RewardConfig
from rldispatch.sim.noise import Uncertainty

if TYPE_CHECKING:
    import torch

MAX_HEADER_BYTES = 100_000_000
FORMATS = ("rldispatch-dqn", "rldispatch-pairwise", "rldispatch-guided-reopt")
"""The formats of rldispatch model files (flat DQN, pairwise, guided re-optimisation)."""


class ModelFileError(ValueError):
    """A model file that is missing, truncated, foreign or does not fit the env."""


class MetadataFields:
    """JSON form of a kind's metadata dataclass; unknown keys (from newer files) are left out."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def env_config_to_dict(config: EnvConfig) -> dict[str, Any]:
    """An :class:`EnvConfig` as the JSON a model file keeps (an uncertain day's settings
    only when there are any: the files of a certain day read as before)."""
    data = asdict(config)
    if data.get("uncertainty") is None:
        data.pop("uncertainty", None)
    return data


def env_config_from_dict(data: dict[str, Any]) -> EnvConfig:
    """Rebuild an :class:`EnvConfig` (with its nested :class:`RewardConfig`) from a dict."""
    if not isinstance(data, dict):
        raise ModelFileError("model env_config: not a JSON object")
    values = dict(data)
    reward = values.pop("reward", None)
    uncertainty = values.pop("uncertainty", None)
    try:
        return EnvConfig(
            **values,
            reward=RewardConfig(**(reward or {})),
            uncertainty=Uncertainty(**uncertainty) if uncertainty else None,
        )
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"model env_config: {error}") from error


def weights_version(network: torch.nn.Module, prefix: str) -> str:
    """``prefix-`` and 12 hex digits of the SHA-256 of the weights (names and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{prefix}-{digest.hexdigest()[:12]}"


def write_model_file(
    path: str | Path,
    network: torch.nn.Module,
    format_name: str,
    format_version: int,
    values: dict[str, Any],
    version_prefix: str,
) -> Path:
    """Write the weights and ``values`` (the kind's metadata, as a dict) atomically.

    Fills in ``version``, ``created_utc`` and ``rldispatch_version`` when they are empty.
    """
    from safetensors.torch import save as save_tensors

    from rldispatch import __version__

    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in network.state_dict().items()
    }
    broken = non_finite_tensor(state)
    if broken is not None:
        raise ModelFileError(
            f"{path}: not saved, the weights hold NaN or infinite values ({broken})"
        )
    values = dict(values)
    values["version"] = values.get("version") or weights_version(network, version_prefix)
    values["created_utc"] = values.get("created_utc") or datetime.now(UTC).isoformat(
        timespec="seconds"
    )
    values["rldispatch_version"] = values.get("rldispatch_version") or __version__
    header = {
        "format": format_name,
        "format_version": str(format_version),
        "metadata": json.dumps(values, allow_nan=False),
    }
    return atomic_write_bytes(path, save_tensors(state, metadata=header))


def parse_header(path: Path, data: bytes, error: type[ModelFileError]) -> dict[str, Any]:
    """The JSON header at the start of ``data`` (at least the header's bytes)."""
    if len(data) < 8:
        raise error(f"{path}: truncated, or not a model file ({len(data)} bytes)")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > MAX_HEADER_BYTES:
        raise error(f"{path}: not an rldispatch model file (no safetensors header)")
    if 8 + header_size > len(data):
        raise error(f"{path}: truncated model file (header cut off)")
    try:
        header = json.loads(data[8 : 8 + header_size])
    except RecursionError as cause:  # a header nested thousands of levels deep
        raise error(f"{path}: not an rldispatch model file (header nested too deep)") from cause
    except ValueError as cause:  # not UTF-8, not JSON, or a number too long to read
        raise error(f"{path}: not an rldispatch model file (unreadable header)") from cause
    if not isinstance(header, dict):
        raise error(f"{path}: not an rldispatch model file (unreadable header)")
    return header


def header_metadata(path: Path, header: dict[str, Any], error: type[ModelFileError]) -> dict:
    """The header's ``__metadata__`` (an empty dict when absent); ``error`` when it is not an
    object of strings, as the format requires."""
    info = header.get("__metadata__")
    if info is None:
        return {}
    if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
        raise error(
            f"{path}: not an rldispatch model file (__metadata__ is not an object of strings)"
        )
    return info


def read_format(path: str | Path) -> str | None:
    """The ``format`` a model file's header names, reading the header alone (None if none).

    :raises ModelFileError: if the file is missing, cut short or has no readable header.
    """
    path = Path(path)
    with _opened(path) as file:
        prefix = file.read(8)
        size = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else 0
        data = prefix + (file.read(size) if size <= MAX_HEADER_BYTES else b"")
    info = header_metadata(path, parse_header(path, data, ModelFileError), ModelFileError)
    return info.get("format")


def read_model_file(
    path: str | Path,
    format_name: str,
    format_version: int,
    error: type[ModelFileError],
    kind: str,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The kind's metadata (parsed JSON) and the tensors of a model file of ``format_name``.

    :param kind: the model kind in messages ("pairwise": "not a pairwise model file").

    :raises error: if the file is missing, truncated, of another format or version, or its
        metadata is not JSON.
    """
    path = Path(path)
    with _opened(path, error) as file:
        data = file.read()
    info = header_metadata(path, parse_header(path, data, error), error)
    found = info.get("format")
    if found != format_name:
        if found in FORMATS:
            raise error(
                f"{path}: not a {kind} model file (format is {found!r}, expected {format_name!r})"
            )
        raise error(f"{path}: not an rldispatch model file (format is {found!r})")
    if info.get("format_version") != str(format_version):
        raise error(
            f"{path}: model format version {info.get('format_version')} is not supported "
            f"(this rldispatch reads version {format_version})"
        )
    from safetensors.torch import load as load_tensors

    try:
        metadata = json.loads(info["metadata"])
        tensors = load_tensors(data)
    except SafetensorError as cause:
        raise error(f"{path}: truncated or corrupt model file ({cause})") from cause
    except (KeyError, TypeError, ValueError) as cause:
        raise error(f"{path}: unreadable model metadata ({cause})") from cause
    if not isinstance(metadata, dict):
        raise error(f"{path}: unreadable model metadata (not a JSON object)")
    broken = non_finite_tensor(tensors)
    if broken is not None:
        raise error(
            f"{path}: the weights hold NaN or infinite values ({broken}); retrain the model"
        )
    return metadata, tensors


def non_finite_tensor(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first tensor with a NaN or infinite value, or None."""
    import torch

    for name, tensor in sorted(tensors.items()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def build_matching(
    build: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """The network ``build`` makes, with the file's weights ``state`` loaded (strict).

    The network is first built on PyTorch's meta device, where it allocates nothing: only if
    its parameter names and shapes are those of the file's tensors is it built for real. A
    header describing a network far larger than the file never allocates it.

    :raises ValueError: naming the first names or shapes that differ.
    """
    import torch

    with torch.device("meta"):
        skeleton = build()
    expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if expected != found:
        differing = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise ValueError(f"parameter shapes differ: {differing}")
    network = build()
    network.load_state_dict(state, strict=True)
    return network


def _opened(path: Path, error: type[ModelFileError] = ModelFileError) -> Any:
    try:
        return path.open("rb")
    except FileNotFoundError as cause:
        raise error(f"{path}: no such model file") from cause
    except IsADirectoryError as cause:
        raise error(f"{path}: is a directory, not a model file") from cause
