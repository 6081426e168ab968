"""How large the decision log is, and pruning it (``serve --retain-days N``).

**Size.** :func:`log_size` counts the rows of ``rl_suggestions`` (the suggestions and round
assignments apart from the rows of rounds that assigned nothing) and ``rl_outcomes``, and reads
the oldest row's time of each table (``/rl/status`` shows them).

**Pruning.** :class:`Retention` runs in a thread of its own, at start and every hour: it
deletes the rows of the log's tables (suggestions, outcomes, the rounds' states) from UTC days
that ended more than ``retain_days`` days ago (whole days: a row is kept at least
``retain_days`` days, at most one day more), a day at a time, in short transactions of
``batch_size`` rows, so requests and the store's writer are never held up. With an
``archive_dir`` each day's rows are first written to
``<archive_dir>/<table>-<YYYY-MM-DD>.jsonl`` (one JSON object per row,
atomically: the file is complete or absent; the folder mode 0700, the files 0600), and only
rows that file holds are deleted; a run cut short is finished by the next one, which adds to
the day's file the rows it lacks, never a row twice. Workers of one machine take turns through
a lock file in the archive folder. A JSON column is read as text: one whose text is not JSON (a
hand-edited SQLite file) is archived as that text, named in the line's ``unparsed_columns``, so
its day is pruned like any other and ``collect`` reports the row as it does from the database.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, Table, Text, cast, delete, func, select

from rldispatch.files import atomic_write_bytes
from rldispatch.service.log.store import prepare_private_folder
from rldispatch.service.log.tables import is_a_suggestion, outcomes, round_states, suggestions

logger = logging.getLogger("rldispatch.service.retention")

PRUNE_INTERVAL_S = 3600.0
BATCH_SIZE = 1000
BATCH_PAUSE_S = 0.01
"""A breath between two delete transactions, for the writer and the requests."""
LOG_TABLES: tuple[Table, ...] = (suggestions, outcomes, round_states)
"""A round's state lives on the UTC day of its rows (its key names the day): pruned and
archived with them."""
LOCK_FILE = ".prune.lock"
ARCHIVE_FILE_MODE = 0o600
"""Archived rows are the log's: readable by the service's user alone, as the database, in a
folder of mode 0700."""
UNPARSED_KEY = "unparsed_columns"
"""An archive line's list of the JSON columns whose database text was not JSON: their values
are that text (read back by :mod:`rldispatch.feedback.service_archive`)."""


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite keeps no time zone
        return moment.replace(tzinfo=UTC)
    return moment


def log_size(engine: Engine) -> dict[str, Any]:
    """Rows and oldest row time of each table of the log: ``suggestions`` (suggestions and
    round assignments), ``rounds_without_assignment`` (the other rows of ``rl_suggestions``),
    ``outcomes``.

    :raises SQLAlchemyError: when the database does not answer.
    """
    with engine.connect() as connection:
        suggested, rounds, oldest_suggestion = connection.execute(
            select(
                func.count().filter(is_a_suggestion),
                func.count().filter(~is_a_suggestion),
                func.min(suggestions.c.created_at),
            )
        ).one()
        reported, oldest_outcome = connection.execute(
            select(func.count(), func.min(outcomes.c.created_at))
        ).one()
    return {
        "suggestions": int(suggested),
        "rounds_without_assignment": int(rounds),
        "outcomes": int(reported),
        "oldest_suggestion_at": _aware(oldest_suggestion),
        "oldest_outcome_at": _aware(oldest_outcome),
    }


def _archived_columns(table: Table) -> list[Any]:
    """``table``'s columns, the JSON ones read as text (see :func:`_row_json`)."""
    return [
        cast(column, Text).label(column.name) if isinstance(column.type, JSON) else column
        for column in table.c
    ]


def _row_json(row: Any, json_names: frozenset[str]) -> bytes:
    """A row as an archive line: times in ISO 8601 UTC, JSON columns parsed from their text;
    a text that is not JSON is kept as it is and its column named in ``unparsed_columns``."""
    values: dict[str, Any] = {}
    unparsed = []
    for key, value in row._mapping.items():
        if key in json_names and value is not None:
            try:
                value = json.loads(value)
            except ValueError:
                unparsed.append(key)
        elif isinstance(value, datetime):
            value = _aware(value).isoformat()
        values[key] = value
    if unparsed:
        values[UNPARSED_KEY] = unparsed
    return json.dumps(values, separators=(",", ":")).encode("utf-8") + b"\n"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, day_time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def archive_path(archive_dir: Path, table: Table, day: date) -> Path:
    """The file a day's rows of ``table`` are archived in."""
    return archive_dir / f"{table.name}-{day.isoformat()}.jsonl"


def archive_files(archive_dir: Path, table: Table) -> list[tuple[date, Path]]:
    """The day files of ``table`` in ``archive_dir``, by day (other names are ignored)."""
    files = []
    for path in archive_dir.glob(f"{table.name}-*.jsonl"):
        try:
            day = date.fromisoformat(path.name[len(table.name) + 1 : -len(".jsonl")])
        except ValueError:
            continue
        if path.is_file() and path == archive_path(archive_dir, table, day):
            files.append((day, path))
    return sorted(files)


def _archived_ids(path: Path) -> tuple[bytes, set[int]]:
    """The bytes of an archive file written before, and the row ids it holds."""
    if not path.is_file():
        return b"", set()
    data = path.read_bytes()
    ids = {json.loads(line)["id"] for line in data.splitlines() if line.strip()}
    return data, ids


@dataclass
class PruneCounts:
    """What one pass pruned: rows per table, and the day files written."""

    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


class Retention:
    """Prunes the log to its last ``retain_days`` days (see the module docstring).

    :param archive_dir: where each day's rows are written before they are deleted (None:
        deleted only).
    """

    def __init__(
        self,
        engine: Engine,
        retain_days: int,
        archive_dir: Path | None = None,
        *,
        interval_s: float = PRUNE_INTERVAL_S,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if retain_days < 1:
            raise ValueError(f"retain_days: must be at least 1, got {retain_days}")
        self.engine = engine
        self.retain_days = retain_days
        self.archive_dir = archive_dir
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.pruned: dict[str, int] = {table.name: 0 for table in LOG_TABLES}
        self.last_run_at: datetime | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def cutoff(self, now: datetime | None = None) -> datetime:
        """Rows before this moment (a UTC midnight) are pruned."""
        now = now or datetime.now(UTC)
        start, _ = _day_bounds((now - timedelta(days=self.retain_days)).date())
        return start

    # --- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.prune_once()
            except Exception as error:  # noqa: BLE001 - the thread outlives any failed pass
                lines = str(error).splitlines()
                self.last_error = f"{type(error).__name__}: {lines[0] if lines else ''}"
                logger.warning("log pruning failed, retried in an hour: %s", self.last_error)
            self._stop.wait(self.interval_s)

    # --- one pass ----------------------------------------------------------------------------

    def prune_once(self, now: datetime | None = None) -> PruneCounts:
        """Prune every table to the cutoff; what was pruned.

        :raises SQLAlchemyError: the database stopped answering (the next pass goes on).
        :raises OSError: the archive could not be written (nothing of that day is deleted).
        :raises ValueError: a day's archive file is not JSON lines of rows (nothing of that
            day is deleted).
        """
        cutoff = self.cutoff(now)
        counts = PruneCounts()
        with self._turn() as ours:
            if not ours:
                return counts  # another worker of this machine is pruning
            for table in LOG_TABLES:
                counts.rows[table.name] = 0
                while not self._stop.is_set():
                    day = self._oldest_day_before(table, cutoff)
                    if day is None:
                        break
                    deleted, written = self._prune_day(table, day, cutoff)
                    counts.rows[table.name] += deleted
                    counts.files.extend(written)
                    if not deleted:
                        break  # rows another process removed meanwhile: the next pass
                self.pruned[table.name] += counts.rows[table.name]
        self.last_run_at = datetime.now(UTC)
        self.last_error = None
        if any(counts.rows.values()):
            logger.info("log pruned to %s: %s", cutoff.date().isoformat(), counts.rows)
        return counts

    @contextmanager
    def _turn(self) -> Iterator[bool]:
        """Whether this process may prune now (a lock file in the archive folder)."""
        if self.archive_dir is None:
            yield True
            return
        prepare_private_folder(self.archive_dir)
        descriptor = os.open(self.archive_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _oldest_day_before(self, table: Table, cutoff: datetime) -> date | None:
        with self.engine.connect() as connection:
            oldest = connection.execute(
                select(func.min(table.c.created_at)).where(table.c.created_at < cutoff)
            ).scalar()
        return None if oldest is None else _aware(oldest).date()

    def _prune_day(self, table: Table, day: date, cutoff: datetime) -> tuple[int, list[str]]:
        start, end = _day_bounds(day)
        end = min(end, cutoff)
        in_day = (table.c.created_at >= start) & (table.c.created_at < end)
        if self.archive_dir is None:
            with self.engine.connect() as connection:
                ids = list(connection.execute(select(table.c.id).where(in_day)).scalars())
            return self._delete(table, ids), []
        path = archive_path(self.archive_dir, table, day)
        before, archived = _archived_ids(path)
        lines = [before]
        ids = []
        json_names = frozenset(c.name for c in table.c if isinstance(c.type, JSON))
        query = select(*_archived_columns(table)).where(in_day).order_by(table.c.id)
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                ids.append(row.id)
                if row.id not in archived:
                    lines.append(_row_json(row, json_names))
        if len(lines) > 1:
            atomic_write_bytes(path, b"".join(lines), mode=ARCHIVE_FILE_MODE)
        return self._delete(table, ids), [str(path)]

    def _delete(self, table: Table, ids: list[int]) -> int:
        deleted = 0
        for first in range(0, len(ids), self.batch_size):
            chunk = ids[first : first + self.batch_size]
            with self.engine.begin() as connection:
                deleted += connection.execute(delete(table).where(table.c.id.in_(chunk))).rowcount
            time.sleep(BATCH_PAUSE_S)
        return deleted

    def status(self) -> dict[str, Any]:
        """The setting and what this process pruned so far (for ``/rl/status``)."""
        return {
            "retain_days": self.retain_days,
            "archive": self.archive_dir is not None,
            "pruned": dict(self.pruned),
            "last_pruned_at": self.last_run_at,
            "last_error": self.last_error,
        }
