"""Any model file, of whichever registered kind: which kind it is, and its loaded model.

Every kind's model file is a ``safetensors`` file whose metadata names its format
(``agents/model_container.py``). :func:`load_learned_model` reads the format from the header
and hands the file to its kind, so ``evaluate``, ``compare``, ``plot`` and ``serve`` take any.
"""

from __future__ import annotations

from pathlib import Path

from rldispatch.agents.kinds import AgentKind, LearnedModel, kind_of_format
from rldispatch.agents.model_container import ModelFileError, read_format

__all__ = ["LearnedModel", "ModelFileError", "load_learned_model", "model_kind"]


def model_kind(path: str | Path) -> AgentKind:
    """The kind of a model file, read from its header alone.

    :raises ModelFileError: if the file is missing, cut short or not an rldispatch model.
    """
    found = read_format(path)
    kind = kind_of_format(found)
    if kind is None:
        raise ModelFileError(f"{path}: not an rldispatch model file (format is {found!r})")
    return kind


def load_learned_model(path: str | Path, name: str | None = None) -> LearnedModel:
    """Load a model file of any kind.

    :param name: the policy's name in reports (default: its kind).
    :raises ModelFileError: if the file cannot be used (the message names the file and why).
    """
    return model_kind(path).load_model(Path(path), name=name)
