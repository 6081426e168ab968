"""The company's own days: its history database (or a CSV export) turned into scenarios.

Four tables, all prefixed ``history_`` so they can share a database with other tables (the
columns are listed in ``docs/history.md``): ``history_drivers``, ``history_shifts``,
``history_bookings`` and ``history_assignments`` (what the dispatchers did; :func:`collect_days`
does not read it).

Times are local wall-clock times without a zone. A service day starts at ``day_start_hour`` on
its date and lasts ``horizon_min`` minutes; a booking belongs to the day of its requested
pickup time. Turning rows into minutes from the start of the day:

- release = when the booking was created; created before the day starts means known at the
  start of the day (0);
- the window's start is clipped to 0 the same way; a requested pickup time outside the service
  hours is a malformed row;
- a shift is clipped to ``[0, horizon_min]``; a shift wholly outside the service hours is left
  out with a note.

Places have kinds (seated, wheelchair, stretcher): a booking's ``load`` and a vehicle's
``capacity`` are its seated places, the ``wheelchair_``/``stretcher_`` columns the others; a
shift may hold one break and a booking a ride limit. These columns are optional, and a table of
an older database without them reads as if they were empty (:data:`OPTIONAL_COLUMNS`).

Every row is checked. A day with any malformed booking or shift is skipped whole, with the
booking id (or driver) and the field reported, so a partial day never trains the agent; no row
is ever repaired silently. A day with no driver on shift, or no bookings, is skipped with its
reason. Bookings whose status is in ``WITHDRAWN_STATUSES`` (withdrawn by the customer) are
not part of the day's demand: they are left out and counted in the day's notes.
"""

from rldispatch.scenarios.history.csv_files import (
    BOOKING_CSV_COLUMNS,
    BOOKING_CSV_OPTIONAL_COLUMNS,
    SHIFT_CSV_COLUMNS,
    SHIFT_CSV_OPTIONAL_COLUMNS,
    collect_csv,
)
from rldispatch.scenarios.history.database import collect_days, write_synthetic_history
from rldispatch.scenarios.history.day_building import (
    BOOKING_DEFAULTS,
    DEFAULT_TRAVEL,
    MINUTE,
    WITHDRAWN_STATUSES,
)
from rldispatch.scenarios.history.results import (
    CollectedDay,
    CollectResult,
    RowProblem,
    SkippedDay,
    SkippedRow,
    write_scenarios,
)
from rldispatch.scenarios.history.schema import (
    OPTIONAL_COLUMNS,
    HistoryAssignment,
    HistoryBase,
    HistoryBooking,
    HistoryDriver,
    HistoryError,
    HistoryShift,
    create_schema,
    masked_url,
)

__all__ = [
    "BOOKING_CSV_COLUMNS",
    "BOOKING_CSV_OPTIONAL_COLUMNS",
    "BOOKING_DEFAULTS",
    "DEFAULT_TRAVEL",
    "MINUTE",
    "OPTIONAL_COLUMNS",
    "SHIFT_CSV_COLUMNS",
    "SHIFT_CSV_OPTIONAL_COLUMNS",
    "WITHDRAWN_STATUSES",
    "CollectResult",
    "CollectedDay",
    "HistoryAssignment",
    "HistoryBase",
    "HistoryBooking",
    "HistoryDriver",
    "HistoryError",
    "HistoryShift",
    "RowProblem",
    "SkippedDay",
    "SkippedRow",
    "collect_csv",
    "collect_days",
    "create_schema",
    "masked_url",
    "write_scenarios",
    "write_synthetic_history",
]
