"""The service's tables (SQLAlchemy Core) and how they are created or brought up to date.

There are no migrations: :func:`ensure_schema` creates missing tables, adds the columns a
newer service reads to tables an older one created (nullable or with a default), the indexes
on the log's creation times, and the unique index that keeps one outcome per booking.
"""

from __future__ import annotations

import logging

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger("rldispatch.service.store")

ID_LENGTH = 128
PATH_LENGTH = 1024

metadata = MetaData()
_id_type = BigInteger().with_variant(Integer, "sqlite")
# The log's ids are never reused, not even on SQLite once retention has pruned every row: a
# row's id names it in the day files collect writes and in the archive.

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
    sqlite_autoincrement=True,
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
    Column("model_version", String(ID_LENGTH)),
    sqlite_autoincrement=True,
)
STATE_KEY_LENGTH = 64
round_states = Table(
    "rl_round_states",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("state_key", String(STATE_KEY_LENGTH), nullable=False, unique=True),
    Column("json_bytes", Integer, nullable=False),
    Column("state", Text, nullable=False),
    sqlite_autoincrement=True,
)
"""The state of each ``/rl/round``, once, compressed; its rows in ``rl_suggestions`` name it
(see :mod:`rldispatch.service.log.round_states`)."""
NOTHING_ASSIGNED = "(nothing assigned)"
"""The ``booking_id`` of the one row a ``/rl/round`` that assigned nothing logs (its state
under ``request``, ``driver_id`` null): never a booking's id (ids are letters, digits and
``_ . : @ / -``), so the row is no booking's suggestion, and no outcome can name it."""
is_a_suggestion = suggestions.c.booking_id != NOTHING_ASSIGNED
"""The rows of ``rl_suggestions`` that suggest or assign a booking (not a round that assigned
nothing): what the A/B figures and the log's suggestion count read."""
one_outcome_per_booking = Index("uq_rl_outcomes_booking", outcomes.c.booking_id, unique=True)
by_creation = (
    Index("ix_rl_suggestions_created_at", suggestions.c.created_at),
    Index("ix_rl_outcomes_created_at", outcomes.c.created_at),
    Index("ix_rl_round_states_created_at", round_states.c.created_at),
)
"""What pruning the log by age (and its oldest row in ``/rl/status``) reads."""

service_state = Table(
    "rl_service_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("ab_ratio", Float, nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(ID_LENGTH), nullable=False),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("champion_path", String(PATH_LENGTH)),
    Column("champion_version", String(ID_LENGTH)),
    Column("challenger_path", String(PATH_LENGTH)),
    Column("challenger_version", String(ID_LENGTH)),
    Column("challenger_ratio", Float, nullable=False, server_default=text("0")),
)
STATE_ROW_ID = 1

SHA256_HEX_LENGTH = 64
model_registry = Table(
    "rl_model_registry",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("version", String(ID_LENGTH), nullable=False, index=True),
    Column("parent_version", String(ID_LENGTH)),
    Column("path", String(PATH_LENGTH), nullable=False),
    Column("sha256", String(SHA256_HEX_LENGTH), nullable=False),
    Column("kind", String(32)),
    Column("status", String(16), nullable=False, index=True),
    Column("training_days", JSON),
    Column("report", JSON, nullable=False),
    Column("promoted_by", String(ID_LENGTH), nullable=False),
    Column("promoted_at", DateTime(timezone=True), nullable=False),
)
"""Every ``rldispatch promote`` decision (see :mod:`rldispatch.service.models.registry`)."""

_ADDED_COLUMNS = {
    "rl_outcomes": ("model_version",),
    "rl_service_state": (
        "version",
        "champion_path",
        "champion_version",
        "challenger_path",
        "challenger_version",
        "challenger_ratio",
    ),
}
"""Columns added after the first release: added to older tables by :func:`ensure_schema`."""


def ensure_schema(engine: Engine) -> None:
    """Create missing tables, add missing columns, create the one-outcome index.

    :raises SQLAlchemyError: when the database does not answer.
    """
    metadata.create_all(engine, checkfirst=True)
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table_name, names in _ADDED_COLUMNS.items():
            present = {column["name"] for column in inspector.get_columns(table_name)}
            table = metadata.tables[table_name]
            for name in names:
                if name not in present:
                    column = table.c[name]
                    kind = column.type.compile(dialect=engine.dialect)
                    default = column.server_default
                    clause = f" NOT NULL DEFAULT {default.arg.text}" if default is not None else ""
                    connection.execute(
                        text(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}{clause}")
                    )
                    logger.info("database: added column %s.%s", table_name, name)
    inspector = inspect(engine)
    for index in by_creation:
        present = {item["name"] for item in inspector.get_indexes(index.table.name)}
        if index.name not in present:
            index.create(engine)
            logger.info("database: added index %s", index.name)
    indexes = {index["name"] for index in inspector.get_indexes("rl_outcomes")}
    if one_outcome_per_booking.name not in indexes:
        try:
            one_outcome_per_booking.create(engine)
        except SQLAlchemyError as error:  # older rows repeat a booking: checked per request
            logger.warning(
                "database: rl_outcomes holds repeated bookings, no unique index (%s)",
                type(error).__name__,
            )
