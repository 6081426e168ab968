"""The service's archived log days read back as rows, merged with the database's.

``serve --retain-days N --archive-dir DIR`` writes each pruned day to
``DIR/<table>-<YYYY-MM-DD>.jsonl`` (:mod:`rldispatch.service.log.retention`): one JSON object per
row, every column, times in ISO 8601 UTC. Here each line becomes the row the database gave
before it was pruned, its columns checked against the table (type, and null only where the
column allows it), so ``collect`` reads an archived day as it read the database.

A line that is not JSON (a truncated last line), not an object, or whose columns do not fit
the table is an :class:`UnreadableLine`: reported and skipped, never fatal. A JSON column the
database held as text that is not JSON is archived as that text and named in the line's
``unparsed_columns``; it is read back as the same text, so ``collect`` reports its row as it
did from the database.

**The database wins.** A row (same table, same id) both in the database and in the archive (a
pruning pass cut short between writing the file and deleting the rows) is read once, from the
database. A row id that is another row in each (another booking or time: the archive of
another database) is refused with :class:`ArchiveConflict`, as nothing tells which is right.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String

from rldispatch.scenarios.history.schema import HistoryError
from rldispatch.service.log.retention import UNPARSED_KEY, archive_files

if TYPE_CHECKING:
    from sqlalchemy import Table


class ArchiveConflict(HistoryError):
    """A row id is another row in the database and in the archive (or twice in the archive)."""


@dataclass(frozen=True)
class UnreadableLine:
    """An archive line that is not a row of its table: where, why, and what could be read."""

    table: str
    where: str
    reason: str
    file_day: date
    row_id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ArchivedRow:
    """A row read back from the archive, its columns as the database gives them."""

    values: dict[str, Any]
    where: str


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _column_value(kind: Any, value: Any) -> Any:
    """``value`` as the database gives a column of type ``kind``; ValueError when it is not
    one."""
    if isinstance(kind, DateTime):
        if not isinstance(value, str):
            raise ValueError("not an ISO 8601 time")
        return _utc(datetime.fromisoformat(value))
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise ValueError("not true or false")
        return value
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("not an integer")
        return value
    if isinstance(kind, Float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("not a number")
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return float(value)
    if isinstance(kind, String):
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value
    if isinstance(kind, JSON):
        return json.dumps(value)  # as JSON text, as collect reads it from the database
    raise ValueError(f"a column of type {kind!r} is not read from archives")


def _row(table: Table, data: Any) -> dict[str, Any]:
    """The row a line holds; ValueError naming the first column that does not fit."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    unparsed = data.get(UNPARSED_KEY, [])
    if not isinstance(unparsed, list):
        raise ValueError(f"{UNPARSED_KEY}: not a list of columns")
    row = {}
    for column in table.c:
        if column.name not in data:
            raise ValueError(f"{column.name}: missing")
        value = data[column.name]
        if column.name in unparsed:  # the database's text, which was not JSON, as it was
            if not isinstance(value, str):
                raise ValueError(f"{column.name}: unparsed but not text")
            row[column.name] = value
            continue
        if value is None:
            if not column.nullable:
                raise ValueError(f"{column.name}: null")
            row[column.name] = None
            continue
        try:
            row[column.name] = _column_value(column.type, value)
        except ValueError as error:
            raise ValueError(f"{column.name}: {error}") from None
    return row


def _readable_parts(data: Any) -> tuple[int | None, datetime | None]:
    """The id and creation time of a line that is not a row, where they can be read."""
    if not isinstance(data, dict):
        return None, None
    row_id = data.get("id")
    row_id = row_id if isinstance(row_id, int) and not isinstance(row_id, bool) else None
    try:
        created = _utc(datetime.fromisoformat(data["created_at"]))
    except (KeyError, TypeError, ValueError):
        created = None
    return row_id, created


def read_archive(
    archive_dir: Path, table: Table, first_day: date
) -> tuple[list[ArchivedRow], list[UnreadableLine]]:
    """The rows of ``table`` in the day files of ``archive_dir`` from ``first_day`` (UTC) on,
    and the lines that are not rows.

    :raises OSError: a day file cannot be read.
    """
    rows: list[ArchivedRow] = []
    unreadable: list[UnreadableLine] = []
    for day, path in archive_files(archive_dir, table):
        if day < first_day:
            continue
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as error:  # a UTF-8 error is a ValueError
                reason = f"not JSON ({_first_line(error)})"
                unreadable.append(UnreadableLine(table.name, where, reason, day))
                continue
            try:
                rows.append(ArchivedRow(_row(table, data), where))
            except ValueError as error:
                row_id, created = _readable_parts(data)
                unreadable.append(
                    UnreadableLine(table.name, where, str(error), day, row_id, created)
                )
    return rows, unreadable


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _identity(row: Mapping[str, Any]) -> tuple[Any, datetime]:
    return row["booking_id"], _utc(row["created_at"])


@dataclass
class MergedRows:
    """One table's rows from the database and the archive, each id once (the database's
    first): see the module docstring."""

    table: str
    rows: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    origins: dict[int, str] = field(default_factory=dict)

    def add_database(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self.rows[int(row.id)] = row._mapping

    def add_archive(
        self, archived: Iterable[ArchivedRow], keep: Callable[[Mapping[str, Any]], bool]
    ) -> None:
        """Add the archived rows ``keep`` selects that the database (or an earlier line) did
        not give.

        :raises ArchiveConflict: a row id is another row here already.
        """
        for item in archived:
            row = item.values
            if not keep(row):
                continue
            known = self.rows.get(row["id"])
            if known is None:
                self.rows[row["id"]] = row
                self.origins[row["id"]] = item.where
            elif _identity(known) != _identity(row):
                seen = self.origins.get(row["id"], "the database")
                raise ArchiveConflict(
                    f"archive {item.where}: {self.table} row {row['id']} is another row in "
                    f"{seen} (another booking or time): is the archive this database's?"
                )

    def unread(self, lines: list[UnreadableLine]) -> list[UnreadableLine]:
        """The ``lines`` of rows not read here otherwise (a broken copy of a row the database
        gave is no loss)."""
        return [line for line in lines if line.row_id not in self.rows]

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for row_id in sorted(self.rows):
            yield self.rows[row_id]
