"""The decision log: every suggestion, every outcome, the switch (SQLAlchemy 2).

SQLite file by default, PostgreSQL (or any SQLAlchemy URL) with ``RLDISPATCH_DATABASE_URL``.
Tables are created, and older ones brought up to date, on first contact
(:mod:`rldispatch.service.log.tables`).

Suggestions are written by one background thread, so a slow or dead database never slows or
fails a suggestion. **Buffer and replay:** records wait in memory, in order, as JSON text,
until the database takes them; while it is down the writer retries with backoff (new records
do not cut a wait short) and, once it answers, replays the backlog. The writer waits
``gather_s`` after a record for others to join it in one transaction. The buffer holds at most
``max_pending`` decisions and ``max_pending_bytes`` bytes of JSON; beyond either the oldest are
dropped, counted as ``lost`` (and ``overflow``) and logged, and so is whatever is still
buffered when the service stops and the writer cannot write it within the flush bound. A
round is one entry of the buffer: its decisions and its state, compressed and held once
(:mod:`rldispatch.service.log.round_states`), so a large round costs the buffer its compressed
state, not a copy per decision. A database that comes back empty (dropped and created again)
gets its tables again at the next write or read: every failure makes the next contact check
the schema again.

Outcomes and the switch are written synchronously: an outcome is accepted only for a booking
that was suggested and has no outcome yet (:class:`OutcomeRefused`), and an outcome or a
switch change the database did not take is refused (:class:`StoreUnavailable`), never
half-applied.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rldispatch.database_url import mask_database_url, mask_secrets_in
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.log import switch_row
from rldispatch.service.log.ab_figures import ab_summary
from rldispatch.service.log.round_states import (
    MAX_LOGGED_STATE_BYTES,
    LoggedState,
    logged_state,
    round_request,
)
from rldispatch.service.log.tables import (
    ID_LENGTH,
    ensure_schema,
    outcomes,
    round_states,
    suggestions,
)

logger = logging.getLogger("rldispatch.service.store")

__all__ = ["ID_LENGTH", "outcomes", "suggestions"]

MAX_PENDING = 10_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
RECORD_OVERHEAD_BYTES = 512
"""Bytes a buffered record costs beyond its JSON text (object, ids, timestamps)."""
BATCH_SIZE = 200
GATHER_S = 0.02
"""How long the writer waits, once a record is buffered, for more to write with it (fewer
than a batch pending): a transaction per batch of requests, not per request."""
OUTCOME_WAIT_S = 2.0
CLOSE_TIMEOUT_S = 5.0
"""How long stopping waits for the writer to write what is buffered; the rest is lost,
counted and logged."""
"""How long an outcome waits for its booking's suggestion to leave this worker's buffer."""


class StoreUnavailable(RuntimeError):
    """The database did not answer."""


@dataclass(frozen=True)
class SuggestionRecord:
    booking_id: str
    arm: str | None
    source: str
    reason: str | None
    driver_id: str | None
    shadow_driver_id: str | None
    shadow_reason: str | None
    model_version: str | None
    latency_ms: float
    request: Any
    response: Any
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class OutcomeRecord:
    booking_id: str
    driver_id: str | None
    requested_pickup_at: datetime
    picked_up_at: datetime
    pickup_delay_min: float
    late: bool
    distance_km: float
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class RawJSON(str):
    """JSON text serialized already (by Pydantic, several times faster than ``json.dumps``);
    :func:`json_serializer` writes it as is."""


def json_serializer(value: Any) -> str:
    """The engine's serializer of JSON columns: passes :class:`RawJSON` through."""
    return value if isinstance(value, RawJSON) else json.dumps(value)


def _as_json_text(value: Any) -> RawJSON:
    """A request or answer (Pydantic model, dataclass or plain data) as JSON text."""
    if hasattr(value, "model_dump_json"):
        return RawJSON(value.model_dump_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return RawJSON(json.dumps(value))


def _short(error: BaseException, url: str = "") -> str:
    """The first line of a database error, without the SQL, its parameters or a password."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    message = f"{type(original).__name__}: {lines[0] if lines else ''}"
    return mask_secrets_in(message, url) if url else message


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'service.sqlite3'}"


def prepare_private_folder(path: Path) -> None:
    """Create ``path`` (and its parents) for the service's own files: mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _prepare_sqlite_file(path: Path) -> None:
    """The SQLite file exists with mode 0600 (its ``-wal`` and ``-shm`` files take the
    same mode), in a folder created 0700 when it is new."""
    if not path.parent.exists():
        prepare_private_folder(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    os.chmod(path, 0o600)


def create_store_engine(url: str) -> Engine:
    """An engine for the URL; SQLite files get mode 0600, WAL mode and a busy timeout
    (5 s unless the URL sets ``?timeout=``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _prepare_sqlite_file(Path(parsed.database))
        connect_args = {} if "timeout" in parsed.query else {"timeout": 5}
        engine = create_engine(url, connect_args=connect_args, json_serializer=json_serializer)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args = {"connect_timeout": 3} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(
        url, pool_pre_ping=True, connect_args=connect_args, json_serializer=json_serializer
    )


class OutcomeRefused(ValueError):
    """An outcome the log does not take: ``unknown`` booking (never suggested) or a
    ``repeat`` (the booking has its outcome already)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class _Buffered:
    """A suggestion, or a round's rows and state, waiting for the writer: JSON already, and
    what it costs."""

    booking_ids: tuple[str, ...]
    rows: list[dict[str, Any]]
    size_bytes: int
    state: dict[str, Any] | None = None

    @property
    def decisions(self) -> int:
        return len(self.rows)


class Store:
    """Decision log and switch (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        max_pending: int = MAX_PENDING,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        batch_size: int = BATCH_SIZE,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        gather_s: float = GATHER_S,
    ) -> None:
        self.url = url
        self.gather_s = gather_s
        self.engine = create_store_engine(url)
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._pending: deque[_Buffered] = deque()
        self._pending_bytes = 0
        self._pending_decisions = 0
        self._in_flight: list[_Buffered] = []
        self._condition = threading.Condition()
        self._closing = False
        self._schema_ready = False
        self._writer: threading.Thread | None = None
        self._outage_logged = False
        self._lost_logged_at: int | None = None
        self.available = False
        self.written = 0
        self.lost = 0
        self.overflow = 0
        self.write_errors = 0
        self.write_attempts = 0
        self.states_omitted = 0
        self.last_error: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the tables if the database answers, and start the writer thread."""
        try:
            self._ensure_schema()
            self.available = True
        except SQLAlchemyError as error:
            self._note_failure(error)
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is buffered (within ``timeout_s``), then count the rest as lost."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._writer is not None:
            self._writer.join(timeout_s)
        with self._condition:
            remaining = self._pending_decisions + sum(i.decisions for i in self._in_flight)
            if remaining:
                self.lost += remaining
                self._pending.clear()
                self._pending_bytes = 0
                self._pending_decisions = 0
                logger.error(
                    "stopping: %d decisions not written within %.1f s (lost; %d lost in all)",
                    remaining,
                    timeout_s,
                    self.lost,
                )
        self.engine.dispose()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every buffered record is written; False on timeout."""
        return self._wait_written(lambda: bool(self._pending or self._in_flight), timeout_s)

    def _wait_written(self, still_waiting: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while still_waiting():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True

    # --- suggestions -------------------------------------------------------------------------

    def record_suggestion(self, record: SuggestionRecord) -> None:
        """Buffer a suggestion for the writer, as JSON text (its size counts in the cap)."""
        row = self._suggestion_row(record)
        size = len(row["request"]) + len(row["response"]) + RECORD_OVERHEAD_BYTES
        self._buffer(_Buffered((record.booking_id,), [row], size))

    def record_round(
        self, records: list[SuggestionRecord], summary: dict[str, Any], state_json: str
    ) -> LoggedState | None:
        """Buffer a round's decisions (``records``, their ``request`` unused) with its state
        (``state_json``) stored once, compressed; the rows' request is ``summary`` and the
        state's key. A state over :data:`MAX_LOGGED_STATE_BYTES` compressed is not logged
        (the rows say ``state_omitted``); None then."""
        created_at = records[0].created_at
        logged: LoggedState | None = logged_state(state_json, created_at.astimezone(UTC).date())
        if logged.size_bytes > MAX_LOGGED_STATE_BYTES:
            with self._condition:
                self.states_omitted += 1
            logger.warning(
                "a round's state takes %d bytes compressed (at most %d are logged): its %d "
                "decisions are logged without it",
                logged.size_bytes,
                MAX_LOGGED_STATE_BYTES,
                len(records),
            )
            logged = None
        request = RawJSON(round_request(summary, logged))
        rows = []
        size = 0
        for record in records:
            row = self._suggestion_row(dataclasses.replace(record, created_at=created_at))
            row["request"] = request
            rows.append(row)
            size += len(row["response"]) + RECORD_OVERHEAD_BYTES
        size += len(request)
        state = None
        if logged is not None:
            state = {
                "created_at": created_at,
                "state_key": logged.key,
                "json_bytes": logged.json_bytes,
                "state": logged.compressed_b64,
            }
            size += logged.size_bytes
        self._buffer(_Buffered(tuple(r.booking_id for r in records), rows, size, state))
        return logged

    def _buffer(self, item: _Buffered) -> None:
        with self._condition:
            self._pending.append(item)
            self._pending_bytes += item.size_bytes
            self._pending_decisions += item.decisions
            self._drop_overflow()
            self._condition.notify()

    def counts(self) -> dict[str, Any]:
        with self._condition:
            pending = self._pending_decisions + sum(i.decisions for i in self._in_flight)
            pending_bytes = self._pending_bytes
        return {
            "available": self.available,
            "pending": pending,
            "pending_bytes": pending_bytes,  # in flight included
            "written": self.written,
            "lost": self.lost,
            "overflow": self.overflow,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }

    def _drop_overflow(self) -> None:
        """Drop the oldest buffered records while the buffer is over either cap."""
        dropped = 0
        in_flight = sum(item.decisions for item in self._in_flight)
        while len(self._pending) > 1 and (
            self._pending_decisions + in_flight > self.max_pending
            or self._pending_bytes > self.max_pending_bytes
        ):
            item = self._pending.popleft()
            self._pending_bytes -= item.size_bytes
            self._pending_decisions -= item.decisions
            dropped += item.decisions
        if not dropped:
            return
        self.lost += dropped
        self.overflow += dropped
        if self._lost_logged_at is None or self.overflow - self._lost_logged_at >= 1000:
            self._lost_logged_at = self.overflow
            logger.error(
                "write buffer full (%d records, %d bytes at most): dropped the oldest; "
                "%d records lost to overflow so far",
                self.max_pending,
                self.max_pending_bytes,
                self.overflow,
            )

    @staticmethod
    def _suggestion_row(record: SuggestionRecord) -> dict[str, Any]:
        row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        row["request"] = _as_json_text(record.request)
        row["response"] = _as_json_text(record.response)
        return row

    # --- writer ------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        backoff = self.retry_initial_s
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if not self._pending:
                    return
                gather = not self._closing and self._pending_decisions < self.batch_size
            if gather:
                # Let the records of the next moments join this one's transaction: one
                # write for many requests under load. Asleep outside the lock, the writer
                # is not woken by each record buffered meanwhile.
                time.sleep(self.gather_s)
            with self._condition:
                self._in_flight = batch = self._next_batch()
            try:
                self.write_attempts += 1
                self._write(batch)
            except SQLAlchemyError as error:
                with self._condition:
                    self._in_flight = []
                    self._pending.extendleft(reversed(batch))
                    self._pending_decisions += sum(item.decisions for item in batch)
                    self._drop_overflow()
                    self.write_errors += 1
                    self._note_failure(error)
                    self._condition.notify_all()
                    # Sleep the whole backoff: a new record does not wake the writer early.
                    retry_at = time.monotonic() + backoff
                    while not self._closing and (wait := retry_at - time.monotonic()) > 0:
                        self._condition.wait(wait)
                    if self._closing:
                        return
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            with self._condition:
                self._in_flight = []
                self._pending_bytes -= sum(item.size_bytes for item in batch)
                self.written += sum(item.decisions for item in batch)
                if self._outage_logged:
                    logger.warning(
                        "database answers again: replaying %d buffered decisions",
                        self._pending_decisions + sum(item.decisions for item in batch),
                    )
                self._outage_logged = False
                self.available = True
                self._condition.notify_all()
            backoff = self.retry_initial_s

    def _next_batch(self) -> list[_Buffered]:
        """The oldest entries, up to ``batch_size`` decisions and a quarter of the byte cap
        (at least one entry); they stay counted in ``_pending_bytes`` until written."""
        batch = [self._pending.popleft()]
        size = batch[0].size_bytes
        rows = batch[0].decisions
        while self._pending and rows + self._pending[0].decisions <= self.batch_size:
            size += self._pending[0].size_bytes
            if size > self.max_pending_bytes // 4:
                break
            rows += self._pending[0].decisions
            batch.append(self._pending.popleft())
        self._pending_decisions -= sum(item.decisions for item in batch)
        return batch

    def _note_failure(self, error: SQLAlchemyError) -> None:
        self._schema_ready = False  # the database may have come back empty: check it again
        self.last_error = _short(error, self.url)
        if not self._outage_logged:
            self._outage_logged = True
            logger.warning(
                "database %s unavailable (%s): buffering writes, retrying",
                mask_database_url(self.url),
                self.last_error,
            )
        self.available = False

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            ensure_schema(self.engine)
            self._schema_ready = True

    def _write(self, batch: list[_Buffered]) -> None:
        self._ensure_schema()
        states = [item.state for item in batch if item.state is not None]
        with self.engine.begin() as connection:
            if states:
                connection.execute(_insert_new_states(self.engine.dialect.name), states)
            connection.execute(insert(suggestions), [row for item in batch for row in item.rows])

    # --- outcomes ----------------------------------------------------------------------------

    def save_outcome(self, record: OutcomeRecord) -> dict[str, Any]:
        """Write a booking's outcome with the arm, source, driver and model version of its
        last suggestion; returns the row written.

        :raises OutcomeRefused: ``unknown`` (the booking was never suggested) or ``repeat``
            (it has an outcome already).
        :raises StoreUnavailable: the database did not take it.
        """
        # The booking's suggestion may still wait in this worker's buffer: let it out first.
        self._wait_written(lambda: self._holds(record.booking_id), OUTCOME_WAIT_S)
        try:
            self._ensure_schema()
            with self.engine.begin() as connection:
                latest = connection.execute(
                    select(
                        suggestions.c.arm,
                        suggestions.c.source,
                        suggestions.c.driver_id,
                        suggestions.c.model_version,
                    )
                    .where(suggestions.c.booking_id == record.booking_id)
                    .order_by(suggestions.c.id.desc())
                    .limit(1)
                ).first()
                if latest is None:
                    raise OutcomeRefused(
                        "unknown", f"booking_id: booking {record.booking_id!r} was never suggested"
                    )
                repeated = connection.execute(
                    select(outcomes.c.id).where(outcomes.c.booking_id == record.booking_id)
                ).first()
                if repeated is not None:
                    raise _repeat(record.booking_id)
                row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
                row.update(
                    arm=latest.arm,
                    source=latest.source,
                    suggested_driver_id=latest.driver_id,
                    model_version=latest.model_version,
                )
                connection.execute(insert(outcomes).values(row))
        except IntegrityError as error:  # another worker wrote it between our read and insert
            raise _repeat(record.booking_id) from error
        except SQLAlchemyError as error:
            self._note_failure(error)
            raise StoreUnavailable(self.last_error) from error
        return row

    def _holds(self, booking_id: str) -> bool:
        return any(booking_id in item.booking_ids for item in self._pending) or any(
            booking_id in item.booking_ids for item in self._in_flight
        )

    # --- the switch --------------------------------------------------------------------------

    def load_state(self) -> ToggleState | None:
        """The saved switch; None when none was saved yet."""
        return self._switch(lambda: self._read(switch_row.read_state))

    def state_version(self) -> int | None:
        """The switch row's version alone (cheap: polled by every worker)."""
        return self._switch(lambda: self._read(switch_row.read_version))

    def update_state(self, change: Callable[[ToggleState], ToggleState]) -> ToggleState:
        """Compare-and-set ``change`` on the switch row (see :mod:`switch_row`), durably, or
        raise :class:`StoreUnavailable`."""
        return self._switch(lambda: switch_row.compare_and_set(self.engine, change))

    def save_state(self, state: ToggleState) -> ToggleState:
        """Write every field of ``state`` (whatever the row holds now); the saved state."""
        return self.update_state(lambda _current: state)

    def _read(self, reader: Callable[[Any], Any]) -> Any:
        self._ensure_schema()
        with self.engine.connect() as connection:
            return reader(connection)

    def _switch(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except (SQLAlchemyError, switch_row.SwitchConflict) as error:
            if isinstance(error, SQLAlchemyError):
                self._note_failure(error)
                raise StoreUnavailable(self.last_error) from error
            raise StoreUnavailable(str(error)) from error

    # --- A/B figures -------------------------------------------------------------------------

    def ab_summary(self) -> dict[str, Any]:
        """The A/B figures (:func:`rldispatch.service.log.ab_figures.ab_summary`)."""
        try:
            self._ensure_schema()
            with self.engine.connect() as connection:
                return ab_summary(connection)
        except SQLAlchemyError as error:
            self._note_failure(error)
            raise StoreUnavailable(self.last_error) from error


def _insert_new_states(dialect: str) -> Any:
    """An insert of round states that passes over a key logged already (the same state again
    that day, or written by another worker)."""
    if dialect == "postgresql":
        return postgresql.insert(round_states).on_conflict_do_nothing(index_elements=["state_key"])
    if dialect == "sqlite":
        return sqlite.insert(round_states).on_conflict_do_nothing(index_elements=["state_key"])
    return insert(round_states).prefix_with("IGNORE", dialect="mysql")


def _repeat(booking_id: str) -> OutcomeRefused:
    return OutcomeRefused("repeat", f"booking_id: booking {booking_id!r} has its outcome already")
