"""Reading a file a user gave: its bytes under a size limit, its JSON under a nesting limit;
every problem one :class:`ScenarioError` line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rldispatch.domain import ScenarioError

MAX_SCENARIO_BYTES = 64 * 1024 * 1024
"""A scenario file larger than this is refused before it is read (a day of 6,000 bookings
takes about 2 MB)."""
MAX_JSON_DEPTH = 6
"""Deepest nesting of lists and objects in the scenario format is 4 (a booking's pickup)."""


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
