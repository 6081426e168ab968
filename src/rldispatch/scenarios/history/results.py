"""What collecting days gives: the days, the days skipped and why, the rows that fit no day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rldispatch.domain import Scenario
from rldispatch.scenarios.files import save_scenario


@dataclass(frozen=True)
class RowProblem:
    """One malformed row: which record, which field, what is wrong."""

    record: str
    field: str
    message: str
    day: date | None = None

    def __str__(self) -> str:
        return f"{self.record}: {self.field}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "record": self.record,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class CollectedDay:
    day: date
    scenario: Scenario
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "name": self.scenario.name,
            "bookings": len(self.scenario.bookings),
            "drivers": len(self.scenario.drivers),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SkippedDay:
    day: date
    reason: str
    problems: tuple[RowProblem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "reason": self.reason,
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass(frozen=True)
class CollectResult:
    """Scenarios per service day, the days skipped and why, and rows that fit no day."""

    days: tuple[CollectedDay, ...]
    skipped: tuple[SkippedDay, ...]
    unplaced: tuple[RowProblem, ...] = ()

    @property
    def scenarios(self) -> list[Scenario]:
        return [collected.scenario for collected in self.days]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [collected.as_dict() for collected in self.days],
            "skipped": [skipped.as_dict() for skipped in self.skipped],
            "unplaced": [problem.as_dict() for problem in self.unplaced],
        }


def write_scenarios(result: CollectResult, out_dir: str | Path) -> list[Path]:
    """Write one scenario file per collected day, ``YYYY-MM-DD.json``, atomically."""
    out_dir = Path(out_dir)
    return [
        save_scenario(collected.scenario, out_dir / f"{collected.day.isoformat()}.json")
        for collected in result.days
    ]
