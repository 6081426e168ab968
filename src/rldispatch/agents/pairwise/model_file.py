"""Pairwise model files: the network's weights and what is needed to use them, in one file.

The same container as the flat DQN's model files (`safetensors`: an 8-byte header length, a
JSON header, the raw tensors; loading runs no code), with ``format: "rldispatch-pairwise"``.
The metadata records the network's widths, the candidates per booking, the feature version
and the feature names: a file whose features differ from this code's is refused rather than
fed the wrong numbers. No fleet size is recorded, because none is fixed. Files are written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.pairwise.features import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    FEATURE_VERSION,
    GLOBAL_FEATURES,
    PAIR_FEATURES,
)
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.files import atomic_write_bytes

FORMAT_NAME = "rldispatch-pairwise"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000


class PairwiseModelError(ModelFileError):
    """A model file that is missing, truncated, foreign or built on other features."""


def feature_names() -> dict[str, list[str]]:
    return {
        "driver": list(DRIVER_FEATURES),
        "booking": list(BOOKING_FEATURES),
        "pair": list(PAIR_FEATURES),
        "global": list(GLOBAL_FEATURES),
    }


@dataclass(frozen=True)
class PairwiseMetadata:
    """What a pairwise model file says about its network.

    :param hidden: width of the per-pair layers.
    :param head_hidden: width of the state head.
    :param candidates_per_booking: drivers scored per visible booking.
    :param feature_version: :data:`FEATURE_VERSION` of the features it was trained on.
    :param features: the feature names, by kind.
    :param env_config: the :class:`EnvConfig` of training (``max_drivers`` is not binding).
    :param hyperparameters: agent and training settings.
    :param version: ``pairwise-`` and 12 hex digits of the weights' SHA-256.
    :param training_summary: days, steps, wall time, evaluation figures, ...
    """

    hidden: int
    head_hidden: int
    candidates_per_booking: int
    feature_version: int = FEATURE_VERSION
    features: dict[str, list[str]] = field(default_factory=feature_names)
    env_config: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    training_summary: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""
    rldispatch_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairwiseMetadata:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class LoadedPairwiseModel:
    """A model read from a file: the network (eval mode, CPU) and its metadata."""

    network: PairQNetwork
    metadata: PairwiseMetadata
    path: Path | None = None


def weights_version(network: torch.nn.Module) -> str:
    """``pairwise-`` and 12 hex digits of the SHA-256 of the weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"pairwise-{digest.hexdigest()[:12]}"


def save_pairwise_model(
    path: str | Path, network: PairQNetwork, metadata: PairwiseMetadata
) -> Path:
    """Write ``network``'s weights and ``metadata`` to ``path`` atomically.

    Fills in ``version``, ``created_utc`` and ``rldispatch_version`` when they are empty.
    """
    from rldispatch import __version__

    if (network.hidden, network.head_hidden) != (metadata.hidden, metadata.head_hidden):
        raise ValueError("save_pairwise_model: metadata widths differ from the network's")
    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in network.state_dict().items()
    }
    values = metadata.to_dict()
    values["version"] = metadata.version or weights_version(network)
    values["created_utc"] = metadata.created_utc or datetime.now(UTC).isoformat(timespec="seconds")
    values["rldispatch_version"] = metadata.rldispatch_version or __version__
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "metadata": json.dumps(values, allow_nan=False),
    }
    return atomic_write_bytes(path, save_tensors(state, metadata=header))


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise PairwiseModelError(f"{path}: truncated model file ({len(data)} bytes)")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > MAX_HEADER_BYTES:
        raise PairwiseModelError(f"{path}: not an rldispatch model file (no safetensors header)")
    if 8 + header_size > len(data):
        raise PairwiseModelError(f"{path}: truncated model file (header cut off)")
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PairwiseModelError(
            f"{path}: not an rldispatch model file (unreadable header)"
        ) from error
    if not isinstance(header, dict):
        raise PairwiseModelError(f"{path}: not an rldispatch model file (unreadable header)")
    return header


def load_pairwise_model(path: str | Path) -> LoadedPairwiseModel:
    """Read a pairwise model file safely (no code runs); the network comes back in eval mode.

    :raises PairwiseModelError: if the file is missing, truncated, not a pairwise model,
        built on other features, or its weights do not match its own metadata.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise PairwiseModelError(f"{path}: no such model file") from error
    except IsADirectoryError as error:
        raise PairwiseModelError(f"{path}: is a directory, not a model file") from error
    header = _read_header(path, data)
    info = header.get("__metadata__") or {}
    if info.get("format") != FORMAT_NAME:
        raise PairwiseModelError(
            f"{path}: not a pairwise model file (format is {info.get('format')!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    if info.get("format_version") != str(FORMAT_VERSION):
        raise PairwiseModelError(
            f"{path}: model format version {info.get('format_version')} is not supported "
            f"(this rldispatch reads version {FORMAT_VERSION})"
        )
    try:
        metadata = PairwiseMetadata.from_dict(json.loads(info["metadata"]))
        state = load_tensors(data)
    except SafetensorError as error:
        raise PairwiseModelError(f"{path}: truncated or corrupt model file ({error})") from error
    except (KeyError, TypeError, ValueError) as error:
        raise PairwiseModelError(f"{path}: unreadable model metadata ({error})") from error
    if metadata.feature_version != FEATURE_VERSION or metadata.features != feature_names():
        raise PairwiseModelError(
            f"{path}: the model was trained on features version {metadata.feature_version}; "
            f"this rldispatch computes version {FEATURE_VERSION} (retrain the model)"
        )
    try:
        network = PairQNetwork(int(metadata.hidden), int(metadata.head_hidden))
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise PairwiseModelError(
            f"{path}: the weights do not match the model's own metadata ({error})"
        ) from error
    network.eval()
    network.requires_grad_(False)
    return LoadedPairwiseModel(network=network, metadata=metadata, path=path)
