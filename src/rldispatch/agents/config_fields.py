"""Hyperparameter configs of every agent kind, validated one way.

A kind's config is a frozen dataclass whose fields are declared with :func:`hyperparameter`
(help text, type and range). :class:`HyperparameterConfig` checks every field after
``__init__`` and reads the config from JSON with unknown keys refused. Every error names the
field as ``<prefix>.<field>``; an unknown key also names the closest known one.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from rldispatch.files import atomic_write_json


@dataclass(frozen=True)
class Rule:
    """What a field accepts: ``int``, ``float``, ``bool``, ``choice`` or ``int_tuple``."""

    kind: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    choices: tuple[str, ...] = ()


def hyperparameter(
    help: str,
    default: Any = MISSING,
    *,
    kind: str = "float",
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    choices: tuple[str, ...] = (),
    default_factory: Any = MISSING,
) -> Any:
    """A config field with its help text and its rule."""
    rule = Rule(kind, low, high, low_open, choices)
    metadata = {"help": help, "rule": rule}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


class ConfigError(ValueError):
    """A config value, key or file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class HyperparameterConfig:
    """Base of every kind's config: validation, JSON form and help of each field."""

    prefix: ClassVar[str] = "config"

    def __post_init__(self) -> None:
        for item in fields(self):
            rule = item.metadata.get("rule")
            if rule is not None:
                value = _checked(f"{self.prefix}.{item.name}", getattr(self, item.name), rule)
                object.__setattr__(self, item.name, value)
        self.check()

    def check(self) -> None:
        """Rules between fields (override)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (tuples as lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The config from a dict of fields; missing fields keep their defaults.

        :raises ConfigError: for a non-object, an unknown key or a bad value, naming the field.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.prefix} config: must be a JSON object")
        known = [item.name for item in fields(cls)]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{cls.prefix}.{key}: unknown hyperparameter{hint}")
        try:
            return cls(**data)
        except ConfigError:
            raise
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{cls.prefix}: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a JSON file of fields; errors name the file and the field."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ConfigError(f"{path}: no such config file") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ConfigError(f"{path}: not a readable JSON config ({error})") from error
        try:
            return cls.from_dict(data)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from error

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON, atomically; :meth:`load` reads it back."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of field ``name``."""
        for item in fields(cls):
            if item.name == name:
                return item.metadata["help"]
        raise KeyError(name)


def _checked(name: str, value: Any, rule: Rule) -> Any:
    if rule.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false, got {value!r}")
        return value
    if rule.kind == "choice":
        if value not in rule.choices:
            raise ConfigError(f"{name}: must be one of {list(rule.choices)}, got {value!r}")
        return value
    if rule.kind == "int_tuple":
        if isinstance(value, list):
            value = tuple(value)
        if (
            not isinstance(value, tuple)
            or not value
            or not all(_is_int(width) and width >= rule.low for width in value)
        ):
            raise ConfigError(f"{name}: must be a list of integers >= {rule.low:g}, got {value!r}")
        return tuple(int(width) for width in value)
    if rule.kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or not rule.low <= value <= rule.high:
            raise ConfigError(
                f"{name}: must be an integer in [{rule.low:g}, {rule.high:g}], got {value!r}"
            )
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    value = float(value)
    below = value <= rule.low if rule.low_open else value < rule.low
    if not math.isfinite(value) or below or value > rule.high:
        interval = f"{'(' if rule.low_open else '['}{rule.low:g}, {rule.high:g}]"
        raise ConfigError(f"{name}: must be a finite number in {interval}, got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
