"""Model files: the Q-network's weights plus what is needed to use them, in one file.

The format is `safetensors <https://github.com/huggingface/safetensors>`_: an 8-byte header
length, a JSON header, then the raw tensors. Loading never runs code from the file. The
header's ``__metadata__`` holds ``format: "rldispatch-dqn"``, ``format_version`` and
``metadata``: the JSON of :class:`ModelMetadata` (sizes, env config, preset,
hyperparameters, version, training summary). Files are written atomically (temporary file,
then rename), so a reader never sees half a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.network import PairScorerQNetwork, QNetwork, build_q_network
from rldispatch.agents.model_container import (
    MetadataFields,
    ModelFileError,
    build_matching,
    env_config_from_dict,
    read_model_file,
    write_model_file,
)
from rldispatch.env import DispatchEnv, EnvConfig

FORMAT_NAME = "rldispatch-dqn"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelMetadata(MetadataFields):
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

    def make_env_config(self) -> EnvConfig:
        """The :class:`EnvConfig` the model was trained with."""
        return env_config_from_dict(self.env_config)


@dataclass(frozen=True)
class LoadedModel:
    """A model read from a file: the network (eval mode, on CPU) and its metadata."""

    network: QNetwork | PairScorerQNetwork
    metadata: ModelMetadata
    path: Path | None = None


def save_model(path: str | Path, network: torch.nn.Module, metadata: ModelMetadata) -> Path:
    """Write ``network``'s weights and ``metadata`` to ``path`` atomically.

    Fills in ``version``, ``created_utc`` and ``rldispatch_version`` when they are empty.
    """
    return write_model_file(
        path, network, FORMAT_NAME, FORMAT_VERSION, metadata.to_dict(), version_prefix="dqn"
    )


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file safely (no code runs); the network comes back in eval mode.

    :raises ModelFileError: if the file is missing, truncated, not an rldispatch model or
        its weights do not match its own metadata.
    """
    path = Path(path)
    values, state = read_model_file(path, FORMAT_NAME, FORMAT_VERSION, ModelFileError, "DQN")
    try:
        metadata = ModelMetadata.from_dict(values)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: unreadable model metadata ({error})") from error
    try:
        config = DQNConfig.from_dict(metadata.hyperparameters)
        env_config = metadata.make_env_config()
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: unreadable model metadata ({error})") from error
    try:
        network = build_matching(
            lambda: build_q_network(
                config,
                metadata.observation_size,
                metadata.n_actions,
                env_config.max_drivers,
                env_config.visible_slots,
            ),
            state,
        )
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
        trained = metadata.make_env_config()
        raise ModelFileError(
            f"this flat DQN model was trained for {trained.max_drivers} drivers and "
            f"{trained.visible_slots} booking slots; these days need {env.config.max_drivers} "
            f"drivers and {env.config.visible_slots} slots (train a pairwise model, "
            "--agent pairwise, for any fleet size)"
        )
