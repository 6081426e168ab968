"""The decision log: every suggestion, every outcome, the toggle state (SQLAlchemy 2).

SQLite file by default, PostgreSQL (or any SQLAlchemy URL) with ``RLDISPATCH_DATABASE_URL``.
Tables are created on first contact; there are no migrations yet.

Suggestions and outcomes are written by one background thread, so a slow or dead database
never slows or fails a suggestion. **Buffer and replay:** records wait in memory, in order,
until the database takes them; while it is down the writer retries with backoff and, once it
answers, replays the backlog. The buffer holds at most ``max_pending`` records; beyond that the
oldest are dropped, counted as ``lost`` and logged, and so is whatever is still buffered when
the service stops with the database down. The toggle state is written synchronously: a toggle
the database did not take is refused (:class:`StoreUnavailable`), never half-applied.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    case,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from rldispatch.service.ab import ToggleState

logger = logging.getLogger("rldispatch.service.store")

ID_LENGTH = 128
MAX_PENDING = 10_000
BATCH_SIZE = 200

metadata = MetaData()
_id_type = BigInteger().with_variant(Integer, "sqlite")

suggestions = Table(
    "rl_suggestions",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("booking_id", String(ID_LENGTH), nullable=False, index=True),
    Column("arm", String(16)),
    Column("source", String(16), nullable=False),
    Column("reason", String(32)),
    Column("driver_id", String(ID_LENGTH)),
    Column("shadow_driver_id", String(ID_LENGTH)),
    Column("shadow_reason", String(32)),
    Column("model_version", String(ID_LENGTH)),
    Column("latency_ms", Float, nullable=False),
    Column("request", JSON, nullable=False),
    Column("response", JSON, nullable=False),
)
outcomes = Table(
    "rl_outcomes",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("booking_id", String(ID_LENGTH), nullable=False, index=True),
    Column("driver_id", String(ID_LENGTH)),
    Column("requested_pickup_at", DateTime(timezone=True), nullable=False),
    Column("picked_up_at", DateTime(timezone=True), nullable=False),
    Column("pickup_delay_min", Float, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("distance_km", Float, nullable=False),
    Column("arm", String(16)),
    Column("source", String(16)),
    Column("suggested_driver_id", String(ID_LENGTH)),
)
service_state = Table(
    "rl_service_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("ab_ratio", Float, nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(ID_LENGTH), nullable=False),
)
STATE_ROW_ID = 1


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


def _as_json(value: Any) -> Any:
    """A request or answer (Pydantic model, dataclass or plain data) for a JSON column."""
    if hasattr(value, "model_dump_json"):
        return RawJSON(value.model_dump_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _short(error: BaseException) -> str:
    """The first line of a database error, without the SQL and its parameters."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0] if lines else ''}"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'service.sqlite3'}"


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs and status."""
    return make_url(url).render_as_string(hide_password=True)


def create_store_engine(url: str) -> Engine:
    """An engine for the URL; SQLite files get their folder, WAL mode and a busy timeout
    (5 s unless the URL sets ``?timeout=``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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


class Store:
    """Decision log and toggle state, written in the background (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        max_pending: int = MAX_PENDING,
        batch_size: int = BATCH_SIZE,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
    ) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._pending: deque[SuggestionRecord | OutcomeRecord] = deque()
        self._condition = threading.Condition()
        self._closing = False
        self._schema_ready = False
        self._writer: threading.Thread | None = None
        self._in_flight = 0
        self._outage_logged = False
        self._lost_logged_at: int | None = None
        self.available = False
        self.written = 0
        self.lost = 0
        self.write_errors = 0
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

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is buffered (within ``timeout_s``), then count the rest as lost."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._writer is not None:
            self._writer.join(timeout_s)
        with self._condition:
            remaining = len(self._pending)
            if remaining:
                self.lost += remaining
                self._pending.clear()
                logger.error(
                    "stopping with the database unavailable: %d records not written (lost)",
                    remaining,
                )
        self.engine.dispose()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every buffered record is written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True

    # --- records -----------------------------------------------------------------------------

    def record_suggestion(self, record: SuggestionRecord) -> None:
        self._enqueue(record)

    def record_outcome(self, record: OutcomeRecord) -> None:
        self._enqueue(record)

    def counts(self) -> dict[str, Any]:
        with self._condition:
            pending = len(self._pending) + self._in_flight
        return {
            "available": self.available,
            "pending": pending,
            "written": self.written,
            "lost": self.lost,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }

    def _enqueue(self, record: SuggestionRecord | OutcomeRecord) -> None:
        with self._condition:
            self._pending.append(record)
            self._drop_overflow()
            self._condition.notify()

    def _drop_overflow(self) -> None:
        excess = len(self._pending) + self._in_flight - self.max_pending
        if excess <= 0:
            return
        for _ in range(min(excess, len(self._pending))):
            self._pending.popleft()
        self.lost += excess
        if self._lost_logged_at is None or self.lost - self._lost_logged_at >= 1000:
            self._lost_logged_at = self.lost
            logger.error(
                "write buffer full (%d records): dropped the oldest; %d records lost so far",
                self.max_pending,
                self.lost,
            )

    # --- writer ------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        backoff = self.retry_initial_s
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if not self._pending:
                    return
                size = min(self.batch_size, len(self._pending))
                batch = [self._pending.popleft() for _ in range(size)]
                self._in_flight = len(batch)
            try:
                self._write(batch)
            except SQLAlchemyError as error:
                with self._condition:
                    self._in_flight = 0
                    self._pending.extendleft(reversed(batch))
                    self._drop_overflow()
                    self.write_errors += 1
                    self._note_failure(error)
                    if self._closing:
                        return
                    self._condition.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            with self._condition:
                self._in_flight = 0
                self.written += len(batch)
                if self._outage_logged:
                    logger.warning(
                        "database answers again: replaying %d buffered records",
                        len(self._pending) + len(batch),
                    )
                self._outage_logged = False
                self.available = True
                self._condition.notify_all()
            backoff = self.retry_initial_s

    def _note_failure(self, error: SQLAlchemyError) -> None:
        self.last_error = _short(error)
        if not self._outage_logged:
            self._outage_logged = True
            logger.warning(
                "database %s unavailable (%s): buffering writes, retrying",
                redact_url(self.url),
                self.last_error,
            )
        self.available = False

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            metadata.create_all(self.engine, checkfirst=True)
            self._schema_ready = True

    def _write(self, batch: list[SuggestionRecord | OutcomeRecord]) -> None:
        self._ensure_schema()
        with self.engine.begin() as connection:
            rows: list[dict[str, Any]] = []
            for record in batch:
                if isinstance(record, SuggestionRecord):
                    rows.append(self._suggestion_row(record))
                    continue
                if rows:
                    connection.execute(insert(suggestions), rows)
                    rows = []
                connection.execute(insert(outcomes), self._outcome_row(connection, record))
            if rows:
                connection.execute(insert(suggestions), rows)

    @staticmethod
    def _suggestion_row(record: SuggestionRecord) -> dict[str, Any]:
        row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        row["request"] = _as_json(record.request)
        row["response"] = _as_json(record.response)
        return row

    @staticmethod
    def _outcome_row(connection: Any, record: OutcomeRecord) -> dict[str, Any]:
        """The outcome with the arm, source and driver of the booking's last suggestion."""
        latest = connection.execute(
            select(suggestions.c.arm, suggestions.c.source, suggestions.c.driver_id)
            .where(suggestions.c.booking_id == record.booking_id)
            .order_by(suggestions.c.id.desc())
            .limit(1)
        ).first()
        row = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        row["arm"] = latest.arm if latest else None
        row["source"] = latest.source if latest else None
        row["suggested_driver_id"] = latest.driver_id if latest else None
        return row

    # --- toggle state ------------------------------------------------------------------------

    def load_state(self) -> ToggleState | None:
        """The saved toggle state; None when none was saved yet."""
        try:
            self._ensure_schema()
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(service_state).where(service_state.c.id == STATE_ROW_ID)
                ).first()
        except SQLAlchemyError as error:
            self._note_failure(error)
            raise StoreUnavailable(self.last_error) from error
        if row is None:
            return None
        updated_at = row.updated_at
        if updated_at.tzinfo is None:  # SQLite keeps no time zone
            updated_at = updated_at.replace(tzinfo=UTC)
        return ToggleState(
            enabled=bool(row.enabled),
            ab_ratio=float(row.ab_ratio),
            shadow=bool(row.shadow),
            updated_at=updated_at,
            updated_by=row.updated_by,
        )

    def save_state(self, state: ToggleState) -> None:
        """Write the toggle state, durably, or raise :class:`StoreUnavailable`."""
        values = {
            "enabled": state.enabled,
            "ab_ratio": state.ab_ratio,
            "shadow": state.shadow,
            "updated_at": state.updated_at,
            "updated_by": state.updated_by,
        }
        try:
            self._ensure_schema()
            with self.engine.begin() as connection:
                result = connection.execute(
                    update(service_state).where(service_state.c.id == STATE_ROW_ID).values(values)
                )
                if result.rowcount == 0:
                    connection.execute(insert(service_state).values(id=STATE_ROW_ID, **values))
        except SQLAlchemyError as error:
            self._note_failure(error)
            raise StoreUnavailable(self.last_error) from error

    # --- A/B figures -------------------------------------------------------------------------

    def ab_summary(self) -> dict[str, dict[str, Any]]:
        """Per arm: suggestions logged, outcomes reported, late rate, mean km and delay."""
        arms: dict[str, dict[str, Any]] = {
            arm: {
                "suggestions": 0,
                "outcomes": 0,
                "late_rate": None,
                "mean_distance_km": None,
                "mean_pickup_delay_min": None,
            }
            for arm in ("rl", "heuristic")
        }
        try:
            self._ensure_schema()
            with self.engine.connect() as connection:
                for arm, count in connection.execute(
                    select(suggestions.c.arm, func.count())
                    .where(suggestions.c.arm.is_not(None))
                    .group_by(suggestions.c.arm)
                ):
                    if arm in arms:
                        arms[arm]["suggestions"] = int(count)
                for arm, count, late, km, delay in connection.execute(
                    select(
                        outcomes.c.arm,
                        func.count(),
                        func.sum(case((outcomes.c.late, 1), else_=0)),
                        func.avg(outcomes.c.distance_km),
                        func.avg(outcomes.c.pickup_delay_min),
                    )
                    .where(outcomes.c.arm.is_not(None))
                    .group_by(outcomes.c.arm)
                ):
                    if arm in arms and count:
                        arms[arm].update(
                            outcomes=int(count),
                            late_rate=float(late) / float(count),
                            mean_distance_km=float(km),
                            mean_pickup_delay_min=float(delay),
                        )
        except SQLAlchemyError as error:
            self._note_failure(error)
            raise StoreUnavailable(self.last_error) from error
        return arms
