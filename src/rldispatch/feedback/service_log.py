"""The service's own days: its decision log turned into scenarios, one per service day.

The service logs every ``/rl/suggest`` request as received in ``rl_suggestions.request`` (and
with each ``/rl/round`` assignment the round's whole state, under ``state``; a round that
assigned nothing logs its state once, in a row of no booking) and every reported outcome in
``rl_outcomes`` (:mod:`rldispatch.service.log.tables`). This module only reads those tables
(SQLAlchemy Core, ``SELECT`` only), and the day files retention archived them in
(:mod:`rldispatch.feedback.service_archive`; a row in both is read from the database), and
rebuilds the days:

- **The clock of a row** is its request's ``minute_of_day`` on its ``service_date``, or on
  the local date of its ``created_at`` (in ``timezone``) when it gave no date; when the
  request left the clock to the server, the local time of ``created_at``. A row belongs to
  the **service day** of its clock: the day starts at ``day_start_hour`` and lasts
  ``horizon_min`` minutes (as for the history).
- **Bookings** are every booking a request showed (the booking asked about, the open
  bookings, and the pickups in drivers' plans), each once: its fields come from the first
  request that showed it (earliest clock, then lowest row id), its release is that request's
  clock (0 when it was before the day started), and it belongs to the service day of its
  requested pickup time. A booking whose requested pickup falls outside its day's service
  hours is left out and reported.
- **Drivers** of a day are the drivers in that day's requests: start position where the first
  request showed it, shift from the earliest ``shift_starts_in_min`` (default: the clock of
  the request) to the latest ``shift_ends_in_min`` any request gave, clipped to the service
  hours; capacity from the first request.
- **Outcomes** belong to the day of their booking; the day file keeps them, with the
  suggestions it was built from, in its ``source`` object (see ``docs/history.md``). The
  outcomes read are those of the bookings placed on the days, and those whose requested
  pickup falls within the range (give or take a day), so an outcome with no matching booking
  is reported too.

A row whose request no longer validates, a ``/rl/round`` row logged with a summary only (by
a service older than the round's logged state: no fleet, no bookings), a row whose booking
is not its request's, an outcome for a booking no used suggestion showed, and an archive line
that is not a row (not JSON, truncated, a column missing or of the wrong type) are skipped and
reported with their ids (and archive file and line), never fatal. A round that assigned
nothing is a decision of no booking and no driver in the day file's ``decisions``. A day with
no driver or fewer than ``min_bookings`` bookings is skipped whole and reported with the rows
it held. Every row in the range ends in exactly one written day's ``provenance`` or in the
skipped report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, Text, cast, create_engine, inspect, select

from rldispatch.domain import TravelConfig
from rldispatch.feedback.service_archive import MergedRows, read_archive
from rldispatch.feedback.service_days import OUTCOMES, SUGGESTIONS, ServiceDayBuilder
from rldispatch.scenarios.history.day_building import check_date_range, check_day_shape
from rldispatch.scenarios.history.results import CollectResult
from rldispatch.scenarios.history.schema import HistoryError
from rldispatch.service.log.tables import outcomes, suggestions

SERVICE_DB_ENV = "RLDISPATCH_SERVICE_DB"
DEFAULT_MIN_BOOKINGS = 5
"""A service day with fewer bookings than this is too little to learn from: skipped."""
DEFAULT_TIMEZONE = "UTC"
OUTCOME_QUERY_CHUNK = 500
"""Booking ids per query when reading the outcomes of the bookings placed on the days."""


class ServiceLogError(HistoryError):
    """The service's log cannot be read (no such table, a bad option)."""


def zone_named(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``Europe/Zurich``), refused with a clear message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceLogError(f"timezone: unknown time zone {name!r}") from None


def _check_tables(engine: Engine) -> None:
    present = set(inspect(engine).get_table_names())
    for table in (SUGGESTIONS, OUTCOMES):
        if table not in present:
            raise ServiceLogError(
                f"{table}: no such table; is this the service's database (the service creates "
                "its tables when it starts)?"
            )


def _bounds(since: date, until: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """UTC times around the range, a day wider each side (the service day's start hour and a
    request's own clock may move a row to the day before or after its local date)."""
    low = datetime.combine(since - timedelta(days=1), time()).replace(tzinfo=zone)
    high = datetime.combine(until + timedelta(days=2), time()).replace(tzinfo=zone)
    return low.astimezone(UTC), high.astimezone(UTC)


@contextmanager
def _connection(url_or_engine: str | Engine | None) -> Iterator[Connection | None]:
    """A connection to the service's database, its tables checked (None: no database)."""
    if url_or_engine is None:
        yield None
        return
    own_engine = isinstance(url_or_engine, str)
    engine = create_engine(url_or_engine) if own_engine else url_or_engine
    try:
        _check_tables(engine)
        with engine.connect() as connection:
            yield connection
    finally:
        if own_engine:
            engine.dispose()


def _archive_folder(archive_dir: str | Path | None) -> Path | None:
    if archive_dir is None:
        return None
    folder = Path(archive_dir)
    if not folder.is_dir():
        raise ServiceLogError(f"archive_dir: {folder} is not a folder")
    return folder


def _round_states(
    connection: Connection | None, archive: Path | None, low: datetime
) -> dict[str, str]:
    """The rounds' states logged from ``low`` on (key: compressed text), from the database
    and the archive (a service older than the table has none)."""
    from rldispatch.service.log.tables import round_states

    states: dict[str, str] = {}
    if connection is not None and inspect(connection).has_table(round_states.name):
        query = select(round_states.c.state_key, round_states.c.state).where(
            round_states.c.created_at >= low
        )
        states.update((key, text) for key, text in connection.execute(query))
    if archive is not None:
        archived, _unreadable = read_archive(archive, round_states, low.date())
        for item in archived:  # a line that is not a row: its rounds' rows say so
            states.setdefault(item.values["state_key"], item.values["state"])
    return states


def collect_service_days(
    url_or_engine: str | Engine | None,
    since: date,
    until: date,
    *,
    archive_dir: str | Path | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    day_start_hour: float = 6.0,
    horizon_min: float = 840.0,
    min_bookings: int = DEFAULT_MIN_BOOKINGS,
    travel: TravelConfig | None = None,
) -> CollectResult:
    """Rebuild the service days from ``since`` to ``until`` (inclusive) out of the service's
    decision log (see the module docstring): its database, the day files its retention
    archived in ``archive_dir`` (:mod:`rldispatch.feedback.service_archive`), or both (a row
    in both is read from the database). Reads only; never writes to either.

    :raises ServiceLogError: a bad option or a database without the service's tables.
    :raises ~rldispatch.feedback.service_archive.ArchiveConflict: an archived row's id is
        another row in the database.
    :raises SQLAlchemyError: the database does not answer.
    :raises OSError: an archive file cannot be read.
    """
    check_date_range(since, until)
    check_day_shape(day_start_hour, horizon_min)
    if min_bookings < 1:
        raise ServiceLogError(f"min_bookings: must be at least 1, got {min_bookings}")
    if url_or_engine is None and archive_dir is None:
        raise ServiceLogError("give the service's database, its archive folder, or both")
    zone = zone_named(timezone)
    archive = _archive_folder(archive_dir)
    # ``request`` is read as text and parsed here: a row holding text that is not JSON is
    # reported, never fails the query.
    plain_columns = [c for c in suggestions.c if c.name not in ("request", "response")]
    builder = ServiceDayBuilder(
        since, until, zone, timezone, day_start_hour, horizon_min, min_bookings, travel
    )
    low, high = _bounds(since, until, zone)
    suggestion_rows = MergedRows(SUGGESTIONS)
    outcome_rows = MergedRows(OUTCOMES)
    with _connection(url_or_engine) as connection:
        if connection is not None:
            # No upper bound on when a row was logged: a request may name an earlier
            # ``service_date`` (a day replayed or sent late); such rows find their day here.
            suggestion_rows.add_database(
                connection.execute(
                    select(*plain_columns, cast(suggestions.c.request, Text).label("request"))
                    .where(suggestions.c.created_at >= low)
                    .order_by(suggestions.c.id)
                )
            )
        if archive is not None:
            archived, unreadable = read_archive(archive, suggestions, low.date())
            suggestion_rows.add_archive(archived, lambda row: row["created_at"] >= low)
            builder.add_unreadable(suggestion_rows.unread(unreadable))
        builder.round_states = _round_states(connection, archive, low)
        for row in suggestion_rows:
            builder.add_suggestion(row, suggestion_rows.origins.get(row["id"]))
        placed = builder.place_bookings()
        if connection is not None:
            outcome_rows.add_database(
                connection.execute(
                    select(outcomes).where(
                        outcomes.c.requested_pickup_at >= low,
                        outcomes.c.requested_pickup_at < high,
                    )
                )
            )
            for start in range(0, len(placed), OUTCOME_QUERY_CHUNK):
                chunk = placed[start : start + OUTCOME_QUERY_CHUNK]
                outcome_rows.add_database(
                    connection.execute(select(outcomes).where(outcomes.c.booking_id.in_(chunk)))
                )
    if archive is not None:
        # An outcome is reported after its requested pickup (15 minutes of clock skew): it
        # was logged on the day of the range's first moment or later.
        placed_ids = set(placed)
        archived, unreadable = read_archive(archive, outcomes, low.date() - timedelta(days=1))
        outcome_rows.add_archive(
            archived,
            lambda row: low <= row["requested_pickup_at"] < high or row["booking_id"] in placed_ids,
        )
        builder.add_unreadable(outcome_rows.unread(unreadable))
    for row in outcome_rows:
        builder.add_outcome(row, outcome_rows.origins.get(row["id"]))
    return builder.result()
