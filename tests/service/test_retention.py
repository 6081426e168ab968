"""Pruning the decision log to its last days, with and without an archive, and its size."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert, select, text

from rldispatch.service.log.retention import Retention, archive_path, log_size
from rldispatch.service.log.store import create_store_engine
from rldispatch.service.log.tables import ensure_schema, outcomes, suggestions
from tests.service.helpers import ServerProcess, ThreadedServer, auth

NOW = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    engine = create_store_engine(url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def add_rows(engine: Engine, when: datetime, count: int, prefix: str) -> None:
    """``count`` suggestions at ``when``, each with its outcome a minute later."""
    with engine.begin() as connection:
        connection.execute(
            insert(suggestions),
            [
                {
                    "created_at": when,
                    "booking_id": f"{prefix}-{k}",
                    "arm": "rl",
                    "source": "rl",
                    "driver_id": "d1",
                    "model_version": "pairwise-test",
                    "latency_ms": 1.5,
                    "request": {"booking": {"id": f"{prefix}-{k}"}},
                    "response": {"driver_id": "d1"},
                }
                for k in range(count)
            ],
        )
        connection.execute(
            insert(outcomes),
            [
                {
                    "created_at": when + timedelta(minutes=1),
                    "booking_id": f"{prefix}-{k}",
                    "driver_id": "d1",
                    "requested_pickup_at": when,
                    "picked_up_at": when,
                    "pickup_delay_min": 0.0,
                    "late": False,
                    "distance_km": 2.0,
                    "arm": "rl",
                    "model_version": "pairwise-test",
                }
                for k in range(count)
            ],
        )


def bookings(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(suggestions.c.booking_id)).scalars())


def fill(engine: Engine) -> None:
    add_rows(engine, NOW - timedelta(days=10, hours=2), 3, "old")  # 2026-03-05
    add_rows(engine, NOW - timedelta(days=8), 5, "older")  # 2026-03-07
    add_rows(engine, NOW - timedelta(days=7, hours=11), 2, "edge")  # 2026-03-07 23:30
    add_rows(engine, NOW - timedelta(days=6), 4, "kept")  # 2026-03-09
    add_rows(engine, NOW, 1, "today")


def test_rows_of_days_older_than_the_retention_are_deleted_in_batches(engine: Engine) -> None:
    fill(engine)
    retention = Retention(engine, retain_days=7, batch_size=2)
    assert retention.cutoff(NOW) == datetime(2026, 3, 8, tzinfo=UTC)
    counts = retention.prune_once(NOW)
    assert counts.rows == {"rl_suggestions": 10, "rl_outcomes": 10, "rl_round_states": 0}
    assert counts.files == []
    assert [b.split("-")[0] for b in bookings(engine)] == ["kept"] * 4 + ["today"]
    size = log_size(engine)
    assert size["suggestions"] == size["outcomes"] == 5
    assert size["oldest_suggestion_at"] == NOW - timedelta(days=6)
    assert retention.prune_once(NOW).rows == {
        "rl_suggestions": 0,
        "rl_outcomes": 0,
        "rl_round_states": 0,
    }
    assert retention.pruned == {"rl_suggestions": 10, "rl_outcomes": 10, "rl_round_states": 0}


def test_the_archive_holds_every_pruned_row_once_a_file_per_day(
    engine: Engine, tmp_path: Path
) -> None:
    fill(engine)
    archive = tmp_path / "archive"
    retention = Retention(engine, retain_days=7, archive_dir=archive, batch_size=3)
    counts = retention.prune_once(NOW)
    assert sorted(Path(name).name for name in counts.files) == [
        "rl_outcomes-2026-03-05.jsonl",
        "rl_outcomes-2026-03-07.jsonl",
        "rl_suggestions-2026-03-05.jsonl",
        "rl_suggestions-2026-03-07.jsonl",
    ]
    day = archive_path(archive, suggestions, datetime(2026, 3, 7).date())
    rows = [json.loads(line) for line in day.read_text().splitlines()]
    assert sorted(row["booking_id"] for row in rows) == sorted(
        [f"older-{k}" for k in range(5)] + ["edge-0", "edge-1"]
    )
    assert rows[0]["request"] == {"booking": {"id": rows[0]["booking_id"]}}
    assert datetime.fromisoformat(rows[0]["created_at"]) == NOW - timedelta(days=8)
    assert not list(archive.glob(".*.tmp"))
    assert len(bookings(engine)) == 5
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700  # the log's rows: the service's alone
    assert {stat.S_IMODE(Path(name).stat().st_mode) for name in counts.files} == {0o600}


def test_a_pass_cut_short_is_finished_without_repeating_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """The archive was written but the rows not deleted (the process died between): the next
    pass deletes them, and adds to the day's file only the rows it lacks."""
    fill(engine)
    archive = tmp_path / "archive"
    retention = Retention(engine, retain_days=7, archive_dir=archive)
    retention._delete = lambda table, ids: 0  # type: ignore[method-assign]
    retention.prune_once(NOW)
    assert len(bookings(engine)) == 15
    day = archive_path(archive, suggestions, datetime(2026, 3, 5).date())
    assert len(day.read_text().splitlines()) == 3
    add_rows(engine, NOW - timedelta(days=10, hours=1), 2, "late")  # the same day, added since
    del retention._delete
    counts = retention.prune_once(NOW)
    assert counts.rows["rl_suggestions"] == 12
    names = [json.loads(line)["booking_id"] for line in day.read_text().splitlines()]
    assert sorted(names) == ["late-0", "late-1", "old-0", "old-1", "old-2"]


def test_retention_needs_at_least_a_day(engine: Engine) -> None:
    with pytest.raises(ValueError, match="retain_days: must be at least 1"):
        Retention(engine, retain_days=0)


def test_serve_prunes_at_start_and_status_shows_the_log(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    engine = create_store_engine(database_url)
    ensure_schema(engine)
    now = datetime.now(UTC)
    add_rows(engine, now - timedelta(days=40), 3, "old")
    add_rows(engine, now - timedelta(hours=1), 2, "new")
    engine.dispose()
    archive = tmp_path / "archive"
    with ServerProcess(
        tmp_path / "data",
        database_url=database_url,
        extra_args=("--retain-days", "30", "--archive-dir", str(archive)),
    ) as server:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while True:
            log = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=10).json()["log"]
            if log["suggestions"] == 2 or datetime.now(UTC) > deadline:
                break
    assert log["suggestions"] == log["outcomes"] == 2
    assert log["retain_days"] == 30 and log["archive"] is True
    assert log["pruned"] == {"rl_suggestions": 3, "rl_outcomes": 3, "rl_round_states": 0}
    assert log["error"] is None
    assert datetime.fromisoformat(log["oldest_suggestion_at"]) > now - timedelta(hours=2)
    assert len(list(archive.glob("rl_suggestions-*.jsonl"))) == 1


def test_status_shows_the_log_without_retention(tmp_path: Path) -> None:
    with ThreadedServer(tmp_path / "data") as server:
        log = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=10).json()["log"]
    assert log["suggestions"] == log["outcomes"] == 0
    assert log["retain_days"] is None and log["oldest_suggestion_at"] is None


def test_serve_refuses_an_archive_without_retention(tmp_path: Path) -> None:
    from rldispatch.cli import main

    code = main(["serve", "--data-dir", str(tmp_path), "--archive-dir", str(tmp_path / "archive")])
    assert code == 2


def test_an_unreadable_archive_file_keeps_the_day_in_the_database(
    engine: Engine, tmp_path: Path
) -> None:
    fill(engine)
    archive = tmp_path / "archive"
    archive.mkdir()
    archive_path(archive, suggestions, datetime(2026, 3, 5).date()).write_text("not json\n")
    retention = Retention(engine, retain_days=7, archive_dir=archive)
    with pytest.raises(ValueError):
        retention.prune_once(NOW)
    assert len(bookings(engine)) == 15


def test_a_row_whose_json_text_is_broken_is_archived_as_it_was_and_its_day_pruned(
    tmp_path: Path,
) -> None:
    """SQLite keeps any text in a JSON column (a hand-edited file): its day is archived with
    that text, named as unparsed, and pruned like the others."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    ensure_schema(engine)
    fill(engine)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE rl_suggestions SET request = '{broken' WHERE booking_id = 'old-1'")
        )
    archive = tmp_path / "archive"
    counts = Retention(engine, retain_days=7, archive_dir=archive).prune_once(NOW)
    assert counts.rows == {"rl_suggestions": 10, "rl_outcomes": 10, "rl_round_states": 0}
    day = archive_path(archive, suggestions, datetime(2026, 3, 5).date())
    rows = {row["booking_id"]: row for row in map(json.loads, day.read_text().splitlines())}
    assert rows["old-1"]["request"] == "{broken"
    assert rows["old-1"]["unparsed_columns"] == ["request"]
    assert rows["old-0"]["request"] == {"booking": {"id": "old-0"}}
    assert "unparsed_columns" not in rows["old-0"]
    assert len(bookings(engine)) == 5
    engine.dispose()
