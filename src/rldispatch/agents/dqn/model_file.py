"""Model files: the Q-network's weights plus what is needed to use them, in one file.

The format is `safetensors <https://github.com/huggingface/safetensors>`_: an 8-byte header
length, a JSON header, then the raw tensors. Loading never runs code from the file. The
header's ``__metadata__`` holds ``format: "rldispatch-dqn"``, ``format_version`` and
``metadata``: the JSON of :class:`ModelMetadata` (sizes, env config, preset,
hyperparameters, version, training summary). Files are written atomically (temporary file,
then rename), so a reader never sees half a model.
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

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.network import PairScorerQNetwork, QNetwork, build_q_network
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_bytes
from rldispatch.rewards import RewardConfig

FORMAT_NAME = "rldispatch-dqn"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000


class ModelFileError(ValueError):
    """A model file that is missing, truncated, foreign or does not fit the env."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model file says about its network.

    :param observation_size: floats per observation the network reads.
    :param n_actions: Q-values the network returns.
    :param env_config: :class:`EnvConfig` as a dict (see :func:`env_config_from_dict`).
    :param preset: the preset the model was trained on (None for scenario files).
    :param hyperparameters: the :class:`DQNConfig` as a dict.
    :param version: identifies the weights: ``dqn-`` and 12 hex digits of their SHA-256
        (filled in by :func:`save_model` when empty).
    :param training_summary: episodes, steps, evaluation reward, wall time, ...
    """

    observation_size: int
    n_actions: int
    env_config: dict[str, Any]
    preset: str | None
    hyperparameters: dict[str, Any]
    version: str = ""
    training_summary: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""
    rldispatch_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def make_env_config(self) -> EnvConfig:
        """The :class:`EnvConfig` the model was trained with."""
        return env_config_from_dict(self.env_config)


@dataclass(frozen=True)
class LoadedModel:
    """A model read from a file: the network (eval mode, on CPU) and its metadata."""

    network: QNetwork | PairScorerQNetwork
    metadata: ModelMetadata
    path: Path | None = None


def env_config_to_dict(config: EnvConfig) -> dict[str, Any]:
    return asdict(config)


def env_config_from_dict(data: dict[str, Any]) -> EnvConfig:
    """Rebuild an :class:`EnvConfig` (with its nested :class:`RewardConfig`) from a dict."""
    values = dict(data)
    reward = values.pop("reward", None)
    try:
        return EnvConfig(**values, reward=RewardConfig(**(reward or {})))
    except TypeError as error:
        raise ModelFileError(f"model env_config: {error}") from error


def weights_version(network: torch.nn.Module) -> str:
    """``dqn-`` and 12 hex digits of the SHA-256 of the weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"dqn-{digest.hexdigest()[:12]}"


def save_model(path: str | Path, network: torch.nn.Module, metadata: ModelMetadata) -> Path:
    """Write ``network``'s weights and ``metadata`` to ``path`` atomically.

    Fills in ``version``, ``created_utc`` and ``rldispatch_version`` when they are empty.
    """
    from rldispatch import __version__

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
        raise ModelFileError(f"{path}: truncated, or not a model file ({len(data)} bytes)")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: not an rldispatch model file (no safetensors header)")
    if 8 + header_size > len(data):
        raise ModelFileError(f"{path}: truncated model file (header cut off)")
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: not an rldispatch model file (unreadable header)") from error
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not an rldispatch model file (unreadable header)")
    return header


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file safely (no code runs); the network comes back in eval mode.

    :raises ModelFileError: if the file is missing, truncated, not an rldispatch model or
        its weights do not match its own metadata.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise ModelFileError(f"{path}: no such model file") from error
    except IsADirectoryError as error:
        raise ModelFileError(f"{path}: is a directory, not a model file") from error
    header = _read_header(path, data)
    info = header.get("__metadata__") or {}
    if info.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not an rldispatch model file (format is not {FORMAT_NAME})")
    if info.get("format_version") != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{path}: model format version {info.get('format_version')} is not supported "
            f"(this rldispatch reads version {FORMAT_VERSION})"
        )
    try:
        metadata = ModelMetadata.from_dict(json.loads(info["metadata"]))
        state = load_tensors(data)
    except SafetensorError as error:
        raise ModelFileError(f"{path}: truncated or corrupt model file ({error})") from error
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: unreadable model metadata ({error})") from error
    try:
        config = DQNConfig.from_dict(metadata.hyperparameters)
        env_config = metadata.make_env_config()
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: unreadable model metadata ({error})") from error
    try:
        network = build_q_network(
            config,
            metadata.observation_size,
            metadata.n_actions,
            env_config.max_drivers,
            env_config.visible_slots,
        )
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ModelFileError(
            f"{path}: the weights do not match the model's own metadata ({error})"
        ) from error
    network.eval()
    network.requires_grad_(False)
    return LoadedModel(network=network, metadata=metadata, path=path)


def check_compatible(metadata: ModelMetadata, env: DispatchEnv) -> None:
    """Refuse an env whose observation or action sizes differ from the model's.

    :raises ModelFileError: naming both sizes.
    """
    observation_size = int(env.observation_space.shape[0])
    n_actions = int(env.action_space.n)
    if (observation_size, n_actions) != (metadata.observation_size, metadata.n_actions):
        raise ModelFileError(
            f"model does not fit the env: it reads {metadata.observation_size} observation "
            f"floats and scores {metadata.n_actions} actions, the env has {observation_size} "
            f"and {n_actions} (max_drivers={env.config.max_drivers}, "
            f"visible_slots={env.config.visible_slots}); train a model for these shapes"
        )
