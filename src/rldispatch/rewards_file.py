"""The company's reward weights as a file: a :class:`RewardConfig` as JSON.

A reward file is one JSON object whose keys are the fields of :class:`RewardConfig`; a field
left out keeps its default. Every verb that plays or scores days reads it (``--reward
FILE``), and a model file records the weights it was trained under. A file that breaks the
format is refused in one line naming the field: an unknown key with the closest known one,
a value that is not a number, or a number outside ``[0, MAX_WEIGHT]``.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from rldispatch.rewards import RewardConfig

MAX_WEIGHT = 1_000_000.0
"""The largest weight a reward file may set (a larger one is a typing mistake)."""
MAX_REWARD_FILE_BYTES = 64 * 1024
REWARD_FIELDS = tuple(item.name for item in fields(RewardConfig))


class RewardFileError(ValueError):
    """A reward file or object that breaks the format; the message names the field."""


def reward_from_dict(data: Any, where: str = "reward") -> RewardConfig:
    """The weights of a JSON object (fields left out keep their defaults).

    :raises RewardFileError: naming the first field that is unknown, not a number or out of
        bounds.
    """
    if not isinstance(data, dict):
        raise RewardFileError(f"{where}: must be a JSON object of reward weights")
    values: dict[str, float] = {}
    for key, value in data.items():
        if key not in REWARD_FIELDS:
            close = difflib.get_close_matches(str(key), REWARD_FIELDS, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RewardFileError(
                f"{where}: unknown field {str(key)[:64]!r}{hint}; known fields: "
                + ", ".join(REWARD_FIELDS)
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RewardFileError(f"{where}.{key}: must be a number, got {type(value).__name__}")
        if not math.isfinite(value) or not 0.0 <= value <= MAX_WEIGHT:
            raise RewardFileError(
                f"{where}.{key}: must be a finite number in [0, {MAX_WEIGHT:,.0f}], got {value}"
            )
        values[key] = float(value)
    return RewardConfig(**values)


def load_reward_file(path: str | Path) -> RewardConfig:
    """The weights of a reward file.

    :raises RewardFileError: if the file is missing, too large, not JSON or breaks the format
        (the message starts with the file's name).
    """
    path = Path(path)
    if not path.is_file():
        raise RewardFileError(f"{path}: no such reward file")
    if path.stat().st_size > MAX_REWARD_FILE_BYTES:
        raise RewardFileError(
            f"{path}: more than {MAX_REWARD_FILE_BYTES:,} bytes: not a reward file"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 JSON"
        raise RewardFileError(f"{path}: not valid JSON ({reason})") from None
    return reward_from_dict(data, where=str(path))


def reward_to_dict(reward: RewardConfig) -> dict[str, float]:
    """The JSON form of the weights (every field), as a report or a model file keeps it."""
    return {key: float(value) for key, value in asdict(reward).items()}


def differing_weights(first: RewardConfig, second: RewardConfig) -> list[str]:
    """The weights that differ, each as ``name first -> second``, in field order."""
    a, b = asdict(first), asdict(second)
    return [f"{key} {a[key]:g} -> {b[key]:g}" for key in REWARD_FIELDS if a[key] != b[key]]
