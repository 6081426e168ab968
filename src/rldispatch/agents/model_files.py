"""Any model file, flat DQN or pairwise: which kind it is, and its policy.

Both kinds are `safetensors` files whose metadata names their format (``rldispatch-dqn`` or
``rldispatch-pairwise``). :func:`load_learned_model` reads the format from the header, then
loads the file with its own reader, so ``evaluate``, ``compare`` and ``serve`` take either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rldispatch.agents.dqn import model_file as dqn_file
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.model_container import ModelFileError, read_format
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
    found = read_format(path)
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
        return replace(self.env_config, max_drivers=most)

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
