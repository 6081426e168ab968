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
    """A day and its scenario; ``source`` (provenance, recorded outcomes) is written in the
    file's ``source`` object and ``counts`` (rows read, used, skipped) in the summary."""

    day: date
    scenario: Scenario
    notes: tuple[str, ...] = ()
    source: dict[str, Any] | None = None
    counts: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        summary = {
            "day": self.day.isoformat(),
            "name": self.scenario.name,
            "bookings": len(self.scenario.bookings),
            "drivers": len(self.scenario.drivers),
            "notes": list(self.notes),
        }
        if self.counts is not None:
            summary["counts"] = dict(self.counts)
        return summary


@dataclass(frozen=True)
class SkippedDay:
    """A day not written, why, and (from the service log) the rows it would have used."""

    day: date
    reason: str
    problems: tuple[RowProblem, ...] = ()
    suggestion_ids: tuple[int, ...] = ()
    outcome_ids: tuple[int, ...] = ()
    counts: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "day": self.day.isoformat(),
            "reason": self.reason,
            "problems": [problem.as_dict() for problem in self.problems],
        }
        if self.counts is not None:
            summary["counts"] = dict(self.counts)
            summary["suggestion_ids"] = list(self.suggestion_ids)
            summary["outcome_ids"] = list(self.outcome_ids)
        return summary


@dataclass(frozen=True)
class SkippedRow:
    """A log row left out: its table, id (None: an archive line too broken to tell), service
    day (when known), why, and, read from an archive, its file and line."""

    table: str
    row_id: int | None
    reason: str
    day: date | None = None
    archive: str | None = None

    def __str__(self) -> str:
        what = self.table if self.row_id is None else f"{self.table} row {self.row_id}"
        where = f" (archive {self.archive})" if self.archive else ""
        return f"{what}{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "table": self.table,
            "id": self.row_id,
            "day": self.day.isoformat() if self.day else None,
            "reason": self.reason,
        }
        if self.archive is not None:
            summary["archive"] = self.archive
        return summary


@dataclass(frozen=True)
class CollectResult:
    """Scenarios per service day, the days skipped and why, and rows that fit no day."""

    days: tuple[CollectedDay, ...]
    skipped: tuple[SkippedDay, ...]
    unplaced: tuple[RowProblem, ...] = ()
    skipped_rows: tuple[SkippedRow, ...] = ()
    totals: dict[str, int] | None = None

    @property
    def scenarios(self) -> list[Scenario]:
        return [collected.scenario for collected in self.days]

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "days": [collected.as_dict() for collected in self.days],
            "skipped": [skipped.as_dict() for skipped in self.skipped],
            "unplaced": [problem.as_dict() for problem in self.unplaced],
        }
        if self.totals is not None:
            summary["totals"] = dict(self.totals)
            summary["skipped_rows"] = [row.as_dict() for row in self.skipped_rows]
        return summary


def write_scenarios(result: CollectResult, out_dir: str | Path) -> list[Path]:
    """Write one scenario file per collected day, ``YYYY-MM-DD.json``, atomically."""
    out_dir = Path(out_dir)
    return [
        save_scenario(
            collected.scenario, out_dir / f"{collected.day.isoformat()}.json", collected.source
        )
        for collected in result.days
    ]
