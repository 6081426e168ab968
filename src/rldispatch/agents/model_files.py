"""Any model file, flat DQN or pairwise: which kind it is, and its policy.

Both kinds are `safetensors` files whose metadata names their format (``rldispatch-dqn`` or
``rldispatch-pairwise``). :func:`load_learned_model` reads the format from the header, then
loads the file with its own reader, so ``evaluate``, ``compare`` and ``serve`` take either.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rldispatch.agents.dqn import model_file as dqn_file
from rldispatch.agents.dqn.model_file import ModelFileError
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.pairwise import model_file as pairwise_file
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig

ModelKind = Literal["dqn", "pairwise"]
PAIRWISE_PRESET = "geneva"
"""The preset whose demand the pairwise training days follow (at every fleet size)."""


def model_kind(path: str | Path) -> ModelKind:
    """``dqn`` or ``pairwise``, read from the file's header alone.

    :raises ModelFileError: if the file is missing, cut short or not an rldispatch model.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise ModelFileError(f"{path}: truncated, or not a model file")
            (size,) = struct.unpack("<Q", prefix)
            if size > dqn_file.MAX_HEADER_BYTES:
                raise ModelFileError(f"{path}: not an rldispatch model file (no header)")
            header = json.loads(file.read(size))
    except FileNotFoundError as error:
        raise ModelFileError(f"{path}: no such model file") from error
    except IsADirectoryError as error:
        raise ModelFileError(f"{path}: is a directory, not a model file") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: not an rldispatch model file (unreadable header)") from error
    info = header.get("__metadata__") if isinstance(header, dict) else None
    found = info.get("format") if isinstance(info, dict) else None
    if found == pairwise_file.FORMAT_NAME:
        return "pairwise"
    if found == dqn_file.FORMAT_NAME:
        return "dqn"
    raise ModelFileError(
        f"{path}: not an rldispatch model file (format is {found!r}, expected "
        f"{dqn_file.FORMAT_NAME!r} or {pairwise_file.FORMAT_NAME!r})"
    )


@dataclass(frozen=True)
class LearnedModel:
    """A model file ready to play: its policy and what it was trained on.

    :param env_config: the env it was trained with; a pairwise model plays any fleet, see
        :meth:`env_config_for`.
    """

    kind: ModelKind
    policy: DQNPolicy | PairwisePolicy
    env_config: EnvConfig
    preset: str | None
    version: str
    path: Path
    training_summary: dict[str, Any]

    def env_config_for(self, days: list[Scenario]) -> EnvConfig:
        """The env config to play ``days`` with: a flat model's own (its driver slots are
        fixed); for a pairwise model, enough driver slots for the largest fleet."""
        if self.kind == "dqn":
            return self.env_config
        most = max((len(day.drivers) for day in days), default=1)
        return replace(self.env_config, max_drivers=max(most, 1))

    def info(self) -> dict[str, Any]:
        """The model's entry in a report."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "version": self.version,
            "preset": self.preset,
            "training_summary": self.training_summary,
        }


def load_learned_model(path: str | Path, name: str | None = None) -> LearnedModel:
    """Load a flat DQN or pairwise model file, whichever it is.

    :param name: the policy's name in reports (default: its kind).
    :raises ModelFileError: if the file cannot be used (the message names the file and why).
    """
    path = Path(path)
    kind = model_kind(path)
    if kind == "pairwise":
        loaded = pairwise_file.load_pairwise_model(path)
        metadata = loaded.metadata
        env_config = dqn_file.env_config_from_dict(metadata.env_config or {})
        return LearnedModel(
            kind=kind,
            policy=PairwisePolicy(loaded, name=name or kind),
            env_config=env_config,
            preset=PAIRWISE_PRESET,
            version=metadata.version,
            path=path,
            training_summary=metadata.training_summary,
        )
    model = dqn_file.load_model(path)
    return LearnedModel(
        kind=kind,
        policy=DQNPolicy(model, name=name or kind),
        env_config=model.metadata.make_env_config(),
        preset=model.metadata.preset,
        version=model.metadata.version,
        path=path,
        training_summary=model.metadata.training_summary,
    )
