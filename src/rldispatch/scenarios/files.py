"""Reading and writing scenario files (JSON, or a Cordeau ``.txt`` instance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rldispatch.domain import Scenario, ScenarioError, scenario_from_dict, scenario_to_dict
from rldispatch.files import atomic_write_json

MAX_SCENARIO_BYTES = 64 * 1024 * 1024
"""A scenario file larger than this is refused before it is read (a day of 6,000 bookings
takes about 2 MB)."""
MAX_JSON_DEPTH = 6
"""Deepest nesting of lists and objects in the scenario format is 4 (a booking's pickup)."""
SOURCE_KEY = "source"
"""Optional top-level object of a scenario file: where the day came from (a collected day's
provenance and recorded outcomes). It is not part of the scenario: loading sets it aside
(:func:`load_scenario_source` reads it)."""


def read_limited_bytes(path: Path, limit: int | None = None, what: str = "file") -> bytes:
    """The bytes of ``path``, refused with :class:`ScenarioError` when missing or over
    ``limit`` (default :data:`MAX_SCENARIO_BYTES`)."""
    limit = MAX_SCENARIO_BYTES if limit is None else limit
    if not path.is_file():
        raise ScenarioError(f"{path}: no such {what}")
    size = path.stat().st_size
    if size > limit:
        raise ScenarioError(f"{path}: {size:,} bytes is more than the {limit:,} a {what} may hold")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the file ({error.strerror or error})") from None


def parse_json_text(data: bytes, where: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse UTF-8 JSON; any problem (encoding, syntax, nesting deeper than ``max_depth``, a
    number too long to convert) is one :class:`ScenarioError` line naming ``where``. ``NaN``
    and ``Infinity`` are parsed, so the field holding one is named when it is checked."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{where}: not UTF-8 text (byte {error.start}); save the file as UTF-8 JSON"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise ScenarioError(
            f"{where}: JSON nested too deeply; the format needs at most {max_depth} levels"
        ) from None
    except json.JSONDecodeError as error:
        raise ScenarioError(
            f"{where}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except ValueError as error:
        message = str(error).split(":")[0] if str(error) else type(error).__name__
        raise ScenarioError(f"{where}: not valid JSON ({message})") from None
    depth = _nesting_depth(value)
    if depth > max_depth:
        raise ScenarioError(
            f"{where}: JSON nested {depth} levels deep; the format needs at most {max_depth}"
        )
    return value


def _nesting_depth(value: Any) -> int:
    """Deepest nesting of lists and objects in a parsed JSON value (no recursion)."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario JSON file, or a Cordeau instance when the file ends in ``.txt``.

    Every problem is raised as :class:`ScenarioError` with the file name in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    if path.suffix == ".txt":
        from rldispatch.scenarios.cordeau import read_cordeau

        return read_cordeau(path).to_scenario()
    data = parse_json_text(read_limited_bytes(path, what="scenario file"), str(path))
    if isinstance(data, dict) and SOURCE_KEY in data:
        if not isinstance(data[SOURCE_KEY], dict):
            raise ScenarioError(f"{path}: {SOURCE_KEY}: must be a JSON object")
        data = {key: value for key, value in data.items() if key != SOURCE_KEY}
    try:
        return scenario_from_dict(data)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None


def load_scenario_source(path: str | Path) -> dict[str, Any] | None:
    """The ``source`` object of a scenario JSON file (None when it has none)."""
    path = Path(path)
    data = parse_json_text(read_limited_bytes(path, what="scenario file"), str(path))
    source = data.get(SOURCE_KEY) if isinstance(data, dict) else None
    if source is not None and not isinstance(source, dict):
        raise ScenarioError(f"{path}: {SOURCE_KEY}: must be a JSON object")
    return source


def save_scenario(
    scenario: Scenario, path: str | Path, source: dict[str, Any] | None = None
) -> Path:
    """Write a scenario as JSON, atomically, with its ``source`` object when given."""
    data = scenario_to_dict(scenario)
    if source is not None:
        data[SOURCE_KEY] = source
    return atomic_write_json(path, data)


def scenario_paths(folder: str | Path) -> list[Path]:
    """The ``*.json`` scenario files of a folder, sorted by file name (dates sort in order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such folder of scenarios")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise ScenarioError(f"{folder}: holds no *.json scenario files")
    return paths
