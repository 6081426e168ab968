"""The history tables (SQLAlchemy), and opening the database they live in."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    String,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rldispatch.database_url import mask_database_url


class HistoryError(ValueError):
    """A history source that cannot be read at all (bad URL, missing CSV column, bad range)."""


class HistoryBase(DeclarativeBase):
    """Base of the history tables; its metadata holds these tables only."""


class HistoryDriver(HistoryBase):
    __tablename__ = "history_drivers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    home_lat: Mapped[float | None] = mapped_column(Double)
    home_lon: Mapped[float | None] = mapped_column(Double)
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    wheelchair_capacity: Mapped[int | None] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    stretcher_capacity: Mapped[int | None] = mapped_column(
        Integer, default=0, server_default=text("0")
    )


class HistoryShift(HistoryBase):
    __tablename__ = "history_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_at: Mapped[datetime | None] = mapped_column(DateTime)
    start_lat: Mapped[float | None] = mapped_column(Double)
    start_lon: Mapped[float | None] = mapped_column(Double)
    capacity: Mapped[int | None] = mapped_column(Integer)
    wheelchair_capacity: Mapped[int | None] = mapped_column(Integer)
    stretcher_capacity: Mapped[int | None] = mapped_column(Integer)
    break_earliest_at: Mapped[datetime | None] = mapped_column(DateTime)
    break_latest_at: Mapped[datetime | None] = mapped_column(DateTime)
    break_duration_min: Mapped[float | None] = mapped_column(Double)


class HistoryBooking(HistoryBase):
    __tablename__ = "history_bookings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    requested_pickup_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    window_start: Mapped[datetime | None] = mapped_column(DateTime)
    window_end: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_lat: Mapped[float | None] = mapped_column(Double)
    pickup_lon: Mapped[float | None] = mapped_column(Double)
    dropoff_lat: Mapped[float | None] = mapped_column(Double)
    dropoff_lon: Mapped[float | None] = mapped_column(Double)
    service_min: Mapped[float] = mapped_column(Double, default=2.0, server_default=text("2.0"))
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    load: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(32), default="booked", server_default="booked")
    wheelchair_load: Mapped[int | None] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    stretcher_load: Mapped[int | None] = mapped_column(Integer, default=0, server_default=text("0"))
    max_ride_min: Mapped[float | None] = mapped_column(Double)


class HistoryAssignment(HistoryBase):
    __tablename__ = "history_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("history_bookings.id"), index=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_at: Mapped[datetime | None] = mapped_column(DateTime)
    dropoff_at: Mapped[datetime | None] = mapped_column(DateTime)
    distance_km: Mapped[float | None] = mapped_column(Double)


OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "history_drivers": ("wheelchair_capacity", "stretcher_capacity"),
    "history_shifts": (
        "capacity",
        "wheelchair_capacity",
        "stretcher_capacity",
        "break_earliest_at",
        "break_latest_at",
        "break_duration_min",
    ),
    "history_bookings": ("wheelchair_load", "stretcher_load", "max_ride_min"),
}
"""Columns a table of an older history database may lack: read as absent (no places of the
kind, the driver's vehicle, no break, no ride limit)."""


def create_schema(engine: Engine) -> None:
    """Create the ``history_`` tables that do not exist yet, and add to an older table the
    :data:`OPTIONAL_COLUMNS` it lacks (nullable, with their server defaults)."""
    HistoryBase.metadata.create_all(engine)
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table_name, names in OPTIONAL_COLUMNS.items():
            table = HistoryBase.metadata.tables[table_name]
            present = {column["name"] for column in inspector.get_columns(table_name)}
            for name in names:
                if name not in present:
                    connection.execute(text(_add_column_sql(table.c[name], engine)))


def _add_column_sql(column: Column, engine: Engine) -> str:
    preparer = engine.dialect.identifier_preparer
    sql = (
        f"ALTER TABLE {preparer.format_table(column.table)} ADD COLUMN "
        f"{preparer.format_column(column)} {column.type.compile(dialect=engine.dialect)}"
    )
    default = column.server_default
    if default is not None:
        sql += f" DEFAULT {default.arg.text}"
    return sql


def masked_url(url: str | URL) -> str:
    """The database URL with its passwords hidden, safe to print."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return mask_database_url(text)


def engine_for(url: str | URL) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise HistoryError(
            "not a database URL (expected e.g. postgresql+psycopg://USER@HOST:5432/DB)"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).is_file()
    ):
        raise HistoryError(f"{database}: no such SQLite database file")
    return create_engine(parsed)
