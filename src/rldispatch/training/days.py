"""The days a run trains on and the days its best model is selected on.

Three sources, for every agent kind:

- :class:`FleetDays`: geneva-style days of every fleet size (the pairwise default, see
  :mod:`rldispatch.scenarios.fleet_days`); selection on days of ``TUNING_SEEDS``;
- :class:`PresetDays`: days of one preset from ``TRAINING_SEEDS`` (the flat default);
  selection on days of ``VALIDATION_SEEDS``;
- :class:`ScenarioDays`: a folder of scenario files named by date, such as ``collect``
  writes. The later dates are held out for ``evaluate`` and never seen here; of the rest,
  the last dates select the model and the earlier ones are trained on.

Training day ``i`` is a pure function of ``i`` (and the run's seed), so a resumed run plays
the days the uninterrupted one would have. A source describes itself as JSON
(:meth:`TrainingDays.describe`), which ``--resume`` reads back with :func:`days_from_description`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.scenarios.days import split_days_by_date
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.scenarios.presets import TRAINING_SEEDS, TUNING_SEEDS, make_preset

VALIDATION_SEEDS = range(TUNING_SEEDS.stop - 10_000, TUNING_SEEDS.stop)
"""Day seeds of plain training's selection days on a preset: the end of ``TUNING_SEEDS``,
apart from the tuner's days (its start) and never a held-out day."""


class DaysError(ValueError):
    """Days that cannot be trained on as asked."""


class TrainingDays(ABC):
    """Where a run's days come from."""

    preset: str | None
    """The preset the days follow (None for scenario files): a label for the model file."""
    selection_days: list[Scenario]

    @abstractmethod
    def day(self, index: int) -> Scenario:
        """Training day ``index`` (0, 1, ...)."""

    @abstractmethod
    def max_drivers(self) -> int:
        """The largest fleet any training or selection day has."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON that :func:`days_from_description` turns back into this source."""

    def with_selection_days(self, days: list[Scenario]) -> TrainingDays:
        """The same training days, the model selected on ``days`` (the tuner's)."""
        self.selection_days = list(days)
        return self

    def named_training_days(self) -> list[str] | None:
        """The names of the days trained on, when they are a set of named days (a folder's
        dates); None when they are drawn without end (a preset's or the fleets' days)."""
        return None


class FleetDays(TrainingDays):
    def __init__(self, distribution: FleetDayDistribution | None = None, selection: int = 16):
        self.distribution = distribution or FleetDayDistribution()
        self.preset = "geneva"
        self.selection_days = self.distribution.tuning_days(selection) if selection else []
        self.selection = selection

    def day(self, index: int) -> Scenario:
        return self.distribution.day(index)

    def max_drivers(self) -> int:
        return self.distribution.max_drivers

    def describe(self) -> dict[str, Any]:
        distribution = self.distribution
        return {
            "source": "fleets",
            "fleet_sizes": list(distribution.fleet_sizes),
            "demand_factors": list(distribution.demand_factors),
            "urgent_shares": list(distribution.urgent_shares),
            "selection": self.selection,
        }


class PresetDays(TrainingDays):
    def __init__(self, preset: str = "geneva", selection: int = 10):
        self.preset = preset
        self.selection = selection
        self.selection_days = [make_preset(preset, seed) for seed in VALIDATION_SEEDS[:selection]]
        self._first = make_preset(preset, TRAINING_SEEDS[0])

    def day(self, index: int) -> Scenario:
        return make_preset(self.preset, TRAINING_SEEDS[index % len(TRAINING_SEEDS)])

    def max_drivers(self) -> int:
        days = [self._first, *self.selection_days]
        return max(len(day.drivers) for day in days)

    def describe(self) -> dict[str, Any]:
        return {"source": "preset", "preset": self.preset, "selection": self.selection}


class ScenarioDays(TrainingDays):
    """Days of a folder of dated scenario files (see the module docstring).

    :param selection: how many of the last training dates select the model (default: a
        fifth of them, at least 1; all of them are trained on when there is only one).
    :param seed: orders the training days: each pass over them is a fresh permutation.
    """

    def __init__(self, folder: str | Path, selection: int | None = None, seed: int = 0):
        self.folder = Path(folder)
        self.preset = None
        self.seed = int(seed)
        training_paths, held_out = split_days_by_date(self.folder)
        days = [load_scenario(path) for path in training_paths]
        if selection is None:
            selection = max(1, round(len(days) / 5))
        if len(days) < 2:
            raise DaysError(
                f"{self.folder}: {len(days)} training day before the held-out dates; "
                "train needs at least 2 (one to learn on, one to select the model on)"
            )
        selection = min(selection, len(days) - 1)
        self.selection = selection
        self.train_days = days[: len(days) - selection]
        self.selection_days = days[len(days) - selection :]
        self.held_out = [path.name for path in held_out]

    def named_training_days(self) -> list[str]:
        return [day.name for day in self.train_days]

    def day(self, index: int) -> Scenario:
        count = len(self.train_days)
        round_index, position = divmod(index, count)
        order = np.random.default_rng([self.seed, round_index]).permutation(count)
        return self.train_days[int(order[position])]

    def max_drivers(self) -> int:
        return max(len(day.drivers) for day in [*self.train_days, *self.selection_days])

    def describe(self) -> dict[str, Any]:
        return {
            "source": "scenarios",
            "folder": str(self.folder),
            "selection": self.selection,
            "seed": self.seed,
            "training_days": self.named_training_days(),
            "selection_days": [day.name for day in self.selection_days],
            "held_out_files": self.held_out,
        }


class RoadNetworkDays(TrainingDays):
    """The days of another source, every one travelling on a road network (an OpenStreetMap
    extract, see :mod:`rldispatch.sim.road_network`) instead of its own formula."""

    def __init__(self, days: TrainingDays, road_network: str) -> None:
        self.days = days
        self.road_network = str(road_network)
        self.preset = days.preset
        self.selection_days = [self._on_roads(day) for day in days.selection_days]

    def _on_roads(self, day: Scenario) -> Scenario:
        if day.coords != "latlon":
            raise DaysError(
                f"road network: day {day.name} has coords '{day.coords}'; a road network needs "
                "latitude and longitude"
            )
        return replace(day, travel=replace(day.travel, road_network=self.road_network))

    def day(self, index: int) -> Scenario:
        return self._on_roads(self.days.day(index))

    def with_selection_days(self, days: list[Scenario]) -> TrainingDays:
        self.selection_days = [self._on_roads(day) for day in days]
        return self

    def max_drivers(self) -> int:
        return self.days.max_drivers()

    def named_training_days(self) -> list[str] | None:
        return self.days.named_training_days()

    def describe(self) -> dict[str, Any]:
        return {
            "source": "road_network",
            "road_network": self.road_network,
            "days": self.days.describe(),
        }


def days_from_description(description: dict[str, Any]) -> TrainingDays:
    """The source :meth:`TrainingDays.describe` described."""
    source = description.get("source")
    if source == "road_network":
        return RoadNetworkDays(
            days_from_description(description["days"]), description["road_network"]
        )
    if source == "fleets":
        distribution = FleetDayDistribution(
            fleet_sizes=tuple(description["fleet_sizes"]),
            demand_factors=tuple(description["demand_factors"]),
            urgent_shares=tuple(description["urgent_shares"]),
        )
        return FleetDays(distribution, description["selection"])
    if source == "preset":
        return PresetDays(description["preset"], description["selection"])
    if source == "scenarios":
        days = ScenarioDays(description["folder"], description["selection"], description["seed"])
        if [day.name for day in days.train_days] != description["training_days"]:
            raise DaysError(
                f"{description['folder']}: the folder's training days changed since the run "
                "started; resume needs the same files"
            )
        return days
    raise DaysError(f"run.json: unknown day source {source!r}")
