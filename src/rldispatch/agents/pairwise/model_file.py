"""Pairwise model files: the network's weights and what is needed to use them, in one file.

The same container as the flat DQN's model files (`safetensors`: an 8-byte header length, a
JSON header, the raw tensors; loading runs no code), with ``format: "rldispatch-pairwise"``.
The metadata records the network's widths, the candidates per booking, the feature version
and the feature names: a file whose features differ from this code's is refused rather than
fed the wrong numbers. No fleet size is recorded, because none is fixed. Files are written
atomically (temporary file, then rename).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rldispatch.agents.model_container import (
    MetadataFields,
    ModelFileError,
    build_matching,
    read_model_file,
    write_model_file,
)
from rldispatch.agents.pairwise.features import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    FEATURE_VERSION,
    GLOBAL_FEATURES,
    PAIR_FEATURES,
)
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.rewards import RewardConfig

FORMAT_NAME = "rldispatch-pairwise"
FORMAT_VERSION = 1


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
class PairwiseMetadata(MetadataFields):
    """What a pairwise model file says about its network.

    :param hidden: width of the per-pair layers.
    :param head_hidden: width of the state head.
    :param candidates_per_booking: drivers scored per visible booking.
    :param feature_version: :data:`FEATURE_VERSION` of the features it was trained on.
    :param features: the feature names, by kind.
    :param env_config: the :class:`EnvConfig` of training (``max_drivers`` is not binding).
    :param preset: the preset its training days follow (None: scenario files).
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
    preset: str | None = "geneva"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    training_summary: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""
    rldispatch_version: str = ""


@dataclass(frozen=True)
class LoadedPairwiseModel:
    """A model read from a file: the network (eval mode, CPU) and its metadata."""

    network: PairQNetwork
    metadata: PairwiseMetadata
    path: Path | None = None


def save_pairwise_model(
    path: str | Path, network: PairQNetwork, metadata: PairwiseMetadata
) -> Path:
    """Write ``network``'s weights and ``metadata`` to ``path`` atomically.

    Fills in ``version``, ``created_utc`` and ``rldispatch_version`` when they are empty.
    """
    if (network.hidden, network.head_hidden) != (metadata.hidden, metadata.head_hidden):
        raise ValueError("save_pairwise_model: metadata widths differ from the network's")
    return write_model_file(
        path, network, FORMAT_NAME, FORMAT_VERSION, metadata.to_dict(), version_prefix="pairwise"
    )


def load_pairwise_model(path: str | Path) -> LoadedPairwiseModel:
    """Read a pairwise model file safely (no code runs); the network comes back in eval mode.

    :raises PairwiseModelError: if the file is missing, truncated, not a pairwise model,
        built on other features, or its weights do not match its own metadata.
    """
    path = Path(path)
    values, state = read_model_file(
        path, FORMAT_NAME, FORMAT_VERSION, PairwiseModelError, "pairwise"
    )
    try:
        metadata = PairwiseMetadata.from_dict(values)
    except (TypeError, ValueError) as error:
        raise PairwiseModelError(f"{path}: unreadable model metadata ({error})") from error
    if metadata.feature_version != FEATURE_VERSION or metadata.features != feature_names():
        raise PairwiseModelError(
            f"{path}: the model was trained on features version {metadata.feature_version}; "
            f"this rldispatch computes version {FEATURE_VERSION} (retrain the model)"
        )
    try:
        hidden, head_hidden = int(metadata.hidden), int(metadata.head_hidden)
        network = build_matching(lambda: PairQNetwork(hidden, head_hidden), state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise PairwiseModelError(
            f"{path}: the weights do not match the model's own metadata ({error})"
        ) from error
    network.eval()
    network.requires_grad_(False)
    return LoadedPairwiseModel(network=network, metadata=metadata, path=path)


def untrained_network(reward: RewardConfig, seed: int = 0) -> PairQNetwork:
    """The network before any training: the known reward of an action (``reward``'s weights,
    shaping weight 1, scale 0.2) added to zeroed output layers, its other weights drawn after
    seeding torch's global random state with ``seed`` (which it leaves advanced)."""
    import torch

    from rldispatch.agents.pairwise.reward import TrainingReward

    known = TrainingReward(reward, shaping_weight=1.0, scale=0.2).known_reward()
    torch.manual_seed(seed)
    return PairQNetwork(known_reward=known)


def save_untrained_model(
    path: str | Path,
    seed: int = 0,
    adjust: Callable[[PairQNetwork], None] | None = None,
    reward: RewardConfig | None = None,
    training_summary: dict[str, Any] | None = None,
) -> Path:
    """A model file of the network before any training (:func:`untrained_network` of
    ``reward``, default the defaults, which the file records; torch's global random state is
    left seeded from ``seed``). ``adjust`` may change the network before it is saved (tests
    and benchmarks blur its pair scores to make a weaker model); ``training_summary`` is
    recorded as given."""
    import torch

    from rldispatch.env import EnvConfig

    reward = reward or RewardConfig()
    network = untrained_network(reward, seed)
    if adjust is not None:
        with torch.no_grad():
            adjust(network)
    metadata = PairwiseMetadata(
        hidden=network.hidden,
        head_hidden=network.head_hidden,
        candidates_per_booking=6,
        env_config=asdict(EnvConfig(max_drivers=30, reward=reward)),
        training_summary=dict(training_summary or {}),
    )
    return save_pairwise_model(path, network, metadata)
