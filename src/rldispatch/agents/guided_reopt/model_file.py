"""``guided-reopt`` model files: the term network's weights and its settings, in the model
container every kind shares (``format: "rldispatch-guided-reopt"``). A file whose features
differ from this code's is refused rather than fed the wrong numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rldispatch.agents.guided_reopt.features import (
    BOOKING_FEATURES,
    END_FEATURES,
    FEATURE_VERSION,
    GATE_FEATURES,
    STATE_FEATURES,
)
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
from rldispatch.agents.guided_reopt.network import ALL_TERMS, DEFAULT_TERMS, GATE_FORMS, TermNetwork
from rldispatch.agents.guided_reopt.policy import TAKE_DRIVERS
from rldispatch.agents.model_container import (
    MetadataFields,
    ModelFileError,
    build_matching,
    read_model_file,
    write_model_file,
)

FORMAT_NAME = "rldispatch-guided-reopt"
FORMAT_VERSION = 1


class GuidedReoptModelError(ModelFileError):
    """A model file that is missing, truncated, foreign or built on other features."""


def feature_names() -> dict[str, list[str]]:
    return {
        "booking": list(BOOKING_FEATURES),
        "end": list(END_FEATURES),
        "state": list(STATE_FEATURES),
        "gate": list(GATE_FEATURES),
    }


@dataclass(frozen=True)
class GuidedReoptMetadata(MetadataFields):
    """What a ``guided-reopt`` model file says about its network and solver.

    :param hidden: width of each head's hidden layers.
    :param terms: the learned terms in use.
    :param term_scale: the bound of each term, in reward units.
    :param horizon_min: the re-plans' horizon.
    :param gate_floor_min: the commit gate commits every planned booking whose pickup is at
        most this many minutes ahead.
    :param take_driver: how the ``take`` term chooses (``"insertion"``, ``"known-reward"`` or
        ``"replan"``; files without it: ``"insertion"``).
    :param gate_form: the gate's form, ``"mlp"`` or ``"linear"``; a linear gate's weights
        are the tensor ``gate_weights``, in the order of ``linear_gate_features``.
    """

    hidden: int
    terms: list[str] = field(default_factory=lambda: list(DEFAULT_TERMS))
    term_scale: float = 15.0
    horizon_min: float = 120.0
    gate_floor_min: float = 15.0
    take_driver: str = "insertion"
    gate_form: str = "mlp"
    linear_gate_features: list[str] = field(default_factory=list)
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
class LoadedGuidedReoptModel:
    network: TermNetwork
    metadata: GuidedReoptMetadata
    path: Path


def save_guided_model(
    path: str | Path, network: TermNetwork, metadata: GuidedReoptMetadata
) -> Path:
    """Write the network and ``metadata`` atomically."""
    return write_model_file(
        path, network, FORMAT_NAME, FORMAT_VERSION, metadata.to_dict(), version_prefix="guided"
    )


def load_guided_model(path: str | Path) -> LoadedGuidedReoptModel:
    """Read a ``guided-reopt`` model file safely (no code runs).

    :raises GuidedReoptModelError: one line naming the file and why it cannot be used.
    """
    path = Path(path)
    values, state = read_model_file(
        path, FORMAT_NAME, FORMAT_VERSION, GuidedReoptModelError, "guided-reopt"
    )
    try:
        metadata = GuidedReoptMetadata.from_dict(values)
        terms = tuple(str(term) for term in metadata.terms)
        if not set(terms) <= set(ALL_TERMS):
            raise ValueError(f"unknown terms {sorted(set(terms) - set(ALL_TERMS))}")
        if metadata.gate_form not in GATE_FORMS:
            raise ValueError(f"unknown gate_form {metadata.gate_form!r}")
        if metadata.take_driver not in TAKE_DRIVERS:
            raise ValueError(f"unknown take_driver {metadata.take_driver!r}")
    except (TypeError, ValueError) as error:
        raise GuidedReoptModelError(f"{path}: unreadable model metadata ({error})") from error
    if metadata.feature_version != FEATURE_VERSION or metadata.features != feature_names():
        raise GuidedReoptModelError(
            f"{path}: the model was trained on features version {metadata.feature_version}; "
            f"this rldispatch computes version {FEATURE_VERSION} (retrain the model)"
        )
    linear = "gate" in terms and metadata.gate_form == "linear"
    if linear and metadata.linear_gate_features != list(LINEAR_GATE_FEATURES):
        raise GuidedReoptModelError(
            f"{path}: its linear gate reads {metadata.linear_gate_features}; this rldispatch "
            f"computes {list(LINEAR_GATE_FEATURES)} (retrain the model)"
        )
    try:
        network = build_matching(
            lambda: TermNetwork(
                int(metadata.hidden), terms, float(metadata.term_scale), metadata.gate_form
            ),
            state,
        )
    except (RuntimeError, TypeError, ValueError) as error:
        raise GuidedReoptModelError(
            f"{path}: the weights do not match the model's own metadata ({error})"
        ) from error
    network.eval()
    network.requires_grad_(False)
    return LoadedGuidedReoptModel(network, metadata, path)
