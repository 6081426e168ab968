"""The history tables (SQLAlchemy), and opening the database they live in."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import (
    Date,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    Integer,
    String,
    create_engine,
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


class HistoryShift(HistoryBase):
    __tablename__ = "history_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_at: Mapped[datetime | None] = mapped_column(DateTime)
    start_lat: Mapped[float | None] = mapped_column(Double)
    start_lon: Mapped[float | None] = mapped_column(Double)


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


class HistoryAssignment(HistoryBase):
    __tablename__ = "history_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("history_bookings.id"), index=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("history_drivers.id"), index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_at: Mapped[datetime | None] = mapped_column(DateTime)
    dropoff_at: Mapped[datetime | None] = mapped_column(DateTime)
    distance_km: Mapped[float | None] = mapped_column(Double)


def create_schema(engine: Engine) -> None:
    """Create the ``history_`` tables that do not exist yet."""
    HistoryBase.metadata.create_all(engine)


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
