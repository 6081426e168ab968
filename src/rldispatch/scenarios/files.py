"""Reading and writing scenario files (JSON, or a Cordeau ``.txt`` instance)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rldispatch.domain import Scenario, ScenarioError, scenario_from_dict, scenario_to_dict
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.cordeau import read_cordeau
from rldispatch.scenarios.reading import parse_json_text, read_limited_bytes

SOURCE_KEY = "source"
"""Optional top-level object of a scenario file: where the day came from (a collected day's
provenance and recorded outcomes). It is not part of the scenario: loading sets it aside
(:func:`load_scenario_source` reads it)."""


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario JSON file, or a Cordeau instance when the file ends in ``.txt``.

    Every problem is raised as :class:`ScenarioError` with the file name in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    if path.suffix == ".txt":
        return read_cordeau(path).to_scenario()
    data = parse_json_text(read_limited_bytes(path, what="scenario file"), str(path))
    if isinstance(data, dict) and SOURCE_KEY in data:
        if not isinstance(data[SOURCE_KEY], dict):
            raise ScenarioError(f"{path}: {SOURCE_KEY}: must be a JSON object")
        data = {key: value for key, value in data.items() if key != SOURCE_KEY}
    try:
        scenario = scenario_from_dict(data)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
    return _road_network_beside(scenario, path)


def _road_network_beside(scenario: Scenario, path: Path) -> Scenario:
    """A scenario's road network file, a relative path taken from the scenario file's folder;
    refused when it is not there."""
    named = scenario.travel.road_network
    if named is None:
        return scenario
    network = Path(named)
    if not network.is_absolute():
        network = path.parent / network
    if not network.is_file():
        raise ScenarioError(f"{path}: travel.road_network: no such file '{named}'")
    return replace(scenario, travel=replace(scenario.travel, road_network=str(network)))


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
