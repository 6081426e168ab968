"""``rldispatch collect``: the company's own days, as scenario files, one per service day."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rldispatch.cli import VERBS, CliError
from rldispatch.database_url import check_database_url
from rldispatch.feedback.service_log import (
    DEFAULT_MIN_BOOKINGS,
    DEFAULT_TIMEZONE,
    SERVICE_DB_ENV,
    collect_service_days,
)
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.history import (
    DEFAULT_TRAVEL,
    CollectResult,
    HistoryError,
    collect_csv,
    collect_days,
    masked_url,
    write_scenarios,
)
from rldispatch.text import plural

DB_URL_ENV = "RLDISPATCH_HISTORY_DB"
EXAMPLES = f"""examples:
  rldispatch collect --db postgresql+psycopg://dispatch@db:5432/company \\
      --since 2025-09-01 --until 2025-10-31 --out days/
  rldispatch collect --csv bookings.csv --shifts-csv shifts.csv --out days/
  rldispatch collect --csv bookings.csv --shifts-csv shifts.csv --shared-rides --out days/
  rldispatch collect --service-db postgresql+psycopg://rl@db:5432/rldispatch \\
      --since 2025-11-01 --until 2025-11-07 --timezone Europe/Zurich --out served/
  rldispatch collect --service-db sqlite:///data/service.sqlite3 \\
      --since 2025-11-01 --until 2025-11-07 --min-bookings 20 --out served/
  rldispatch collect --service-db postgresql+psycopg://rl@db:5432/rldispatch \\
      --archive-dir archive/ --since 2025-08-01 --until 2025-11-07 --out served/

The database URLs may also come from ${DB_URL_ENV} and
${SERVICE_DB_ENV} (keeps a password off the command line). One file per service
day, named YYYY-MM-DD.json. From the history, a day with any malformed row is skipped whole
and reported. From the service's own log, a log
row that does not parse is skipped and reported by id, a day with no driver or fewer than
--min-bookings bookings is skipped whole, and each day file records the suggestion and
outcome rows it came from. --archive-dir also reads the days the service pruned
(serve --retain-days N --archive-dir DIR): alone, or with --service-db (a row in both is
read from the database); an archive line that does not parse is skipped and reported with
its file and line. Exit code 0 when at least one day was written, 1 when none was, 2 on bad
input. Tables, CSV columns and the service log: docs/history.md."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "collect",
        help=VERBS["collect"],
        description="Rebuild the company's service days from its history database, a CSV "
        "export, or the service's own decision log, one scenario file per day.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--db", metavar="URL", help=f"history database URL (default: ${DB_URL_ENV})"
    )
    source.add_argument("--csv", metavar="FILE", type=Path, help="bookings CSV export")
    source.add_argument(
        "--service-db",
        metavar="URL",
        help=f"the service's own database: its logged suggestions and outcomes "
        f"(or ${SERVICE_DB_ENV}); read only",
    )
    parser.add_argument(
        "--archive-dir",
        metavar="DIR",
        type=Path,
        help="the service's archive of pruned days (serve --archive-dir): read alone, or with "
        "--service-db (a row in both is read from the database)",
    )
    parser.add_argument(
        "--shifts-csv", metavar="FILE", type=Path, help="drivers' shifts CSV (with --csv)"
    )
    parser.add_argument("--since", metavar="DATE", help="first service day, e.g. 2025-09-01")
    parser.add_argument("--until", metavar="DATE", help="last service day (inclusive)")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--day-start-hour",
        metavar="HOUR",
        type=float,
        default=6.0,
        help="clock hour at minute 0 of a service day (default: 6)",
    )
    parser.add_argument(
        "--horizon-min",
        metavar="MIN",
        type=float,
        default=840.0,
        help="length of a service day (default: 840)",
    )
    parser.add_argument(
        "--speed-kmh",
        metavar="KMH",
        type=float,
        default=DEFAULT_TRAVEL.speed_kmh,
        help="free-flow speed of the travel model of days whose log does not record the "
        f"travel played (default: {DEFAULT_TRAVEL.speed_kmh:g})",
    )
    parser.add_argument(
        "--detour",
        metavar="FACTOR",
        type=float,
        default=DEFAULT_TRAVEL.detour,
        help="road distance over straight-line distance, as --speed-kmh "
        f"(default: {DEFAULT_TRAVEL.detour:g})",
    )
    parser.add_argument(
        "--timezone",
        metavar="ZONE",
        help=f"with --service-db or --archive-dir: the service's time zone, e.g. "
        f"Europe/Zurich (the log's times are UTC; default: {DEFAULT_TIMEZONE})",
    )
    parser.add_argument(
        "--min-bookings",
        metavar="N",
        type=int,
        help=f"with --service-db or --archive-dir: a day with fewer bookings is skipped "
        f"(default: {DEFAULT_MIN_BOOKINGS})",
    )
    parser.add_argument(
        "--shared-rides",
        action="store_true",
        help="with --db or --csv: mark the days as shared-ride days (a vehicle carries "
        "several bookings at once, within its places of each kind)",
    )
    parser.add_argument("--json", metavar="OUT", type=Path, help="write a JSON summary here")
    parser.set_defaults(handler=run)


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option}: not a date like 2025-10-20: {text!r}") from None


def _database_message(error: SQLAlchemyError, url: str) -> str:
    """The first line of a database error, with the URL's password blotted out."""
    cause = getattr(error, "orig", None) or error
    message = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        message = message.replace(str(password), "***")
    if "history_" in message:
        message += " (create the tables with rldispatch.scenarios.history.create_schema)"
    return message


def _collect(args: argparse.Namespace) -> tuple[CollectResult, str]:
    since = _parse_date(args.since, "--since")
    until = _parse_date(args.until, "--until")
    if not args.speed_kmh > 0:
        raise CliError(f"--speed-kmh: must be positive, got {args.speed_kmh}")
    if not args.detour >= 1:
        raise CliError(f"--detour: must be at least 1, got {args.detour}")
    travel = replace(DEFAULT_TRAVEL, speed_kmh=args.speed_kmh, detour=args.detour)
    shape = {
        "day_start_hour": args.day_start_hour,
        "horizon_min": args.horizon_min,
        "travel": travel,
    }
    if args.csv is not None:
        if args.shifts_csv is None:
            raise CliError("--csv needs --shifts-csv FILE too (the drivers' shifts)")
        _refuse_service_options(args)
        source = f"{args.csv} with shifts {args.shifts_csv}"
        try:
            return collect_csv(
                args.csv, args.shifts_csv, since, until, **shape, shared_rides=args.shared_rides
            ), source
        except HistoryError as error:
            raise CliError(str(error)) from None
    if args.shifts_csv is not None:
        raise CliError("--shifts-csv goes with --csv FILE")
    kind, url = _database_source(args)
    if url is not None:
        try:
            check_database_url(url, "--service-db" if kind == "service" else "--db")
        except ValueError as error:
            raise CliError(str(error)) from None
    if since is None or until is None:
        option = "--db" if kind == "history" else "--service-db" if url else "--archive-dir"
        raise CliError(f"{option} needs --since DATE and --until DATE")
    sources = [masked_url(url)] if url else []
    if args.archive_dir is not None:
        sources.append(f"archive {args.archive_dir}")
    source = " and ".join(sources)
    if kind == "service" and args.shared_rides:
        raise CliError(
            "--shared-rides goes with --db or --csv (the service's log records whether its "
            "days shared rides)"
        )
    try:
        if kind == "service":
            return collect_service_days(
                url,
                since,
                until,
                **shape,
                archive_dir=args.archive_dir,
                timezone=args.timezone or DEFAULT_TIMEZONE,
                min_bookings=(
                    DEFAULT_MIN_BOOKINGS if args.min_bookings is None else args.min_bookings
                ),
            ), source
        _refuse_service_options(args)
        return collect_days(url, since, until, **shape, shared_rides=args.shared_rides), source
    except HistoryError as error:
        raise CliError(str(error)) from None
    except SQLAlchemyError as error:
        what = "the history" if kind == "history" else "the service's log"
        raise CliError(
            f"cannot read {what} from {source}: {_database_message(error, url)}"
        ) from None
    except ImportError as error:
        raise CliError(f"no database driver for {source}: {error.name or error}") from None
    except OSError as error:
        raise CliError(f"cannot read the archive {args.archive_dir}: {error}") from None


def _database_source(args: argparse.Namespace) -> tuple[str, str | None]:
    """``("history", url)`` or ``("service", url)``: the options first, then the history's
    environment variable, then the service's; ``("service", None)`` for ``--archive-dir``
    alone (no environment variable is read then)."""
    if args.service_db or args.archive_dir is not None:
        if args.db:
            raise CliError("--archive-dir goes with --service-db URL, or alone")
        return "service", args.service_db
    if args.db:
        return "history", args.db
    if os.environ.get(DB_URL_ENV):
        return "history", os.environ[DB_URL_ENV]
    if os.environ.get(SERVICE_DB_ENV):
        return "service", os.environ[SERVICE_DB_ENV]
    raise CliError(
        f"give --db URL (or set {DB_URL_ENV}), --csv FILE --shifts-csv FILE, or "
        f"--service-db URL (or set {SERVICE_DB_ENV})"
    )


def _refuse_service_options(args: argparse.Namespace) -> None:
    for option, value in (
        ("--timezone", args.timezone),
        ("--min-bookings", args.min_bookings),
        ("--archive-dir", args.archive_dir),
    ):
        if value is not None:
            raise CliError(f"{option} goes with --service-db URL")


def _counts_text(counts: dict[str, int] | None) -> str:
    """``; suggestions 12 read, 11 used, 1 skipped; outcomes ...`` (empty without counts)."""

    if counts is None:
        return ""
    waited = counts.get("rounds_without_assignment", 0)
    rounds = f" ({plural(waited, 'round')} that assigned nothing)" if waited else ""
    return (
        f"; suggestions {counts['suggestions_read']} read, {counts['suggestions_used']} used"
        f"{rounds}, {counts['suggestions_skipped']} skipped; outcomes "
        f"{counts['outcomes_read']} read, {counts['outcomes_matched']} matched, "
        f"{counts['outcomes_skipped']} skipped"
    )


def run(args: argparse.Namespace) -> int:
    result, source = _collect(args)
    paths = write_scenarios(result, args.out)
    for collected, path in zip(result.days, paths, strict=True):
        notes = f" ({'; '.join(collected.notes)})" if collected.notes else ""
        print(
            f"wrote {path}: {len(collected.scenario.bookings)} bookings, "
            f"{len(collected.scenario.drivers)} drivers{notes}{_counts_text(collected.counts)}"
        )
    for skipped in result.skipped:
        earlier = args.out / f"{skipped.day.isoformat()}.json"
        kept = f" (the earlier {earlier} is left as it was)" if earlier.exists() else ""
        print(f"skipped {skipped.day}: {skipped.reason}{kept}{_counts_text(skipped.counts)}")
    for problem in result.unplaced:
        print(f"not on any day: {problem}")
    for row in result.skipped_rows:
        print(f"skipped row: {row}")
    if result.totals is not None:
        print(f"in all{_counts_text(result.totals)}")
    print(f"{plural(len(paths), 'day')} written to {args.out}, {len(result.skipped)} skipped")
    if args.json is not None:
        summary = {
            "source": source,
            "since": args.since,
            "until": args.until,
            "out": str(args.out),
            **result.as_dict(),
        }
        for day_summary, path in zip(summary["days"], paths, strict=True):
            day_summary["path"] = str(path)
        atomic_write_json(args.json, summary)
    return 0 if paths else 1
