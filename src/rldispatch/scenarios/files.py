"""Reading and writing scenario files (JSON, or a Cordeau ``.txt`` instance)."""

from __future__ import annotations

import json
from pathlib import Path

from rldispatch.domain import Scenario, ScenarioError, scenario_from_dict, scenario_to_dict
from rldispatch.files import atomic_write_json


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ScenarioError(f"{path}: not valid JSON ({error})") from None
    try:
        return scenario_from_dict(data)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None


def save_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write a scenario as JSON, atomically."""
    return atomic_write_json(path, scenario_to_dict(scenario))


def load_scenario_dir(folder: str | Path) -> list[tuple[Path, Scenario]]:
    """Every ``*.json`` scenario in a folder, sorted by file name (dates sort in order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: no such folder of scenarios")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise ScenarioError(f"{folder}: holds no *.json scenario files")
    return [(path, load_scenario(path)) for path in paths]
