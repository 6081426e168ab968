"""The decision log: what it writes, and what it does while the database is down."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.log.store import (
    OutcomeRecord,
    OutcomeRefused,
    Store,
    StoreUnavailable,
    SuggestionRecord,
    outcomes,
    suggestions,
)


def suggestion(booking_id: str, arm: str | None = "rl", source: str = "rl") -> SuggestionRecord:
    return SuggestionRecord(
        booking_id=booking_id,
        arm=arm,
        source=source,
        reason=None if source == "rl" else "ab_heuristic_arm",
        driver_id="d1",
        shadow_driver_id=None,
        shadow_reason=None,
        model_version="dqn-test",
        latency_ms=0.4,
        request={"booking": {"id": booking_id}},
        response={"driver_id": "d1"},
    )


def outcome(booking_id: str, delay_min: float, km: float) -> OutcomeRecord:
    requested = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return OutcomeRecord(
        booking_id=booking_id,
        driver_id="d1",
        requested_pickup_at=requested,
        picked_up_at=requested + timedelta(minutes=delay_min),
        pickup_delay_min=delay_min,
        late=delay_min > 5,
        distance_km=km,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.sqlite3'}?timeout=0.05"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    store = Store(sqlite_url, retry_initial_s=0.05, retry_max_s=0.2)
    store.start()
    yield store
    store.close()


def booking_ids(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = list(connection.scalars(select(suggestions.c.booking_id).order_by(suggestions.c.id)))
    engine.dispose()
    return ids


def test_suggestions_and_outcomes_are_written_with_the_arm(store: Store, sqlite_url: str) -> None:
    store.record_suggestion(suggestion("b1", arm="rl"))
    store.record_suggestion(suggestion("b2", arm="heuristic", source="fallback"))
    store.save_outcome(outcome("b1", delay_min=7.0, km=4.0))
    store.save_outcome(outcome("b2", delay_min=1.0, km=6.0))
    assert store.counts()["written"] == 2
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                outcomes.c.booking_id, outcomes.c.arm, outcomes.c.source, outcomes.c.model_version
            ).order_by(outcomes.c.id)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("b1", "rl", "rl", "dqn-test"),
        ("b2", "heuristic", "fallback", "dqn-test"),
    ]
    summary = store.ab_summary()
    arms = summary["arms"]
    assert arms["rl"] == {
        "suggestions": 1,
        "bookings": 1,
        "outcomes": 1,
        "completion_rate": 1.0,
        "late_rate": 1.0,
        "mean_distance_km": 4.0,
        "mean_pickup_delay_min": 7.0,
    }
    assert arms["heuristic"]["late_rate"] == 0.0
    assert arms["heuristic"]["mean_distance_km"] == 6.0
    assert summary["rl_by_model_version"] == {"dqn-test": arms["rl"]}


def test_an_outcome_needs_a_suggested_booking_and_comes_once(store: Store) -> None:
    with pytest.raises(OutcomeRefused, match="never suggested") as refused:
        store.save_outcome(outcome("unknown", delay_min=0.0, km=1.0))
    assert refused.value.kind == "unknown"
    store.record_suggestion(suggestion("b1"))  # still buffered: the outcome waits for it
    store.save_outcome(outcome("b1", delay_min=2.0, km=3.0))
    with pytest.raises(OutcomeRefused, match="has its outcome already") as repeated:
        store.save_outcome(outcome("b1", delay_min=90.0, km=30.0))
    assert repeated.value.kind == "repeat"
    rl = store.ab_summary()["arms"]["rl"]
    assert (rl["outcomes"], rl["mean_pickup_delay_min"]) == (1, 2.0)


def test_outcomes_are_unique_per_booking_in_the_database(store: Store, sqlite_url: str) -> None:
    """The unique index refuses a repeat that a concurrent writer slips past the check."""
    store.record_suggestion(suggestion("b1"))
    store.save_outcome(outcome("b1", delay_min=2.0, km=3.0))
    row = {f: getattr(outcome("b1", 1.0, 1.0), f) for f in ("booking_id", "pickup_delay_min")}
    engine = create_engine(sqlite_url)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            outcomes.insert().values(
                **row,
                created_at=datetime.now(UTC),
                requested_pickup_at=datetime.now(UTC),
                picked_up_at=datetime.now(UTC),
                late=False,
                distance_km=1.0,
            )
        )
    engine.dispose()


def test_toggle_state_survives_a_new_store(sqlite_url: str) -> None:
    first = Store(sqlite_url)
    first.start()
    assert first.load_state() is None
    first.save_state(ToggleState(enabled=True, ab_ratio=0.25, shadow=True, updated_by="ops"))
    first.close()
    second = Store(sqlite_url)
    second.start()
    state = second.load_state()
    second.close()
    assert (state.enabled, state.ab_ratio, state.shadow, state.updated_by, state.version) == (
        True,
        0.25,
        True,
        "ops",
        1,
    )
    assert state.updated_at.tzinfo is not None


@pytest.fixture
def locked(sqlite_url: str, store: Store) -> Iterator[sqlite3.Connection]:
    """Another process holds the database's write lock: every write of the store fails."""
    path = sqlite_url.removeprefix("sqlite:///").split("?")[0]
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    yield connection
    connection.close()


def test_while_the_database_is_down_writes_are_buffered_then_replayed(
    store: Store, sqlite_url: str, locked: sqlite3.Connection
) -> None:
    for index in range(30):
        store.record_suggestion(suggestion(f"b{index}"))
    assert not store.flush(0.5)
    counts = store.counts()
    assert (counts["available"], counts["written"], counts["pending"]) == (False, 0, 30)
    assert counts["write_errors"] >= 1 and "locked" in counts["last_error"]
    with pytest.raises(StoreUnavailable):
        store.save_state(ToggleState(enabled=True))
    locked.execute("ROLLBACK")
    assert store.flush(10.0)
    assert store.counts()["available"] and store.counts()["lost"] == 0
    assert booking_ids(sqlite_url) == [f"b{index}" for index in range(30)]


def test_a_full_buffer_drops_the_oldest_and_counts_them(
    sqlite_url: str, locked: sqlite3.Connection
) -> None:
    small = Store(sqlite_url, max_pending=5, retry_initial_s=0.05, retry_max_s=0.1)
    small.start()
    for index in range(8):
        small.record_suggestion(suggestion(f"b{index}"))
    assert small.counts()["lost"] == 3
    locked.execute("ROLLBACK")
    assert small.flush(10.0)
    small.close()
    assert booking_ids(sqlite_url) == [f"b{index}" for index in range(3, 8)]


def test_stopping_with_the_database_down_counts_the_rest_as_lost(
    sqlite_url: str, locked: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(sqlite_url, retry_initial_s=0.05)
    store.start()
    for index in range(4):
        store.record_suggestion(suggestion(f"b{index}"))
    store.close(timeout_s=1.0)
    assert store.counts()["lost"] == 4
    assert "4 decisions not written" in caplog.text


@pytest.mark.postgres
def test_postgres_store_keeps_state_suggestions_and_outcomes(postgres_schema_url: str) -> None:
    store = Store(postgres_schema_url)
    store.start()
    store.save_state(ToggleState(enabled=True, ab_ratio=0.7, updated_by="ops"))
    for index in range(20):
        store.record_suggestion(suggestion(f"b{index}"))
    store.save_outcome(outcome("b3", delay_min=9.0, km=3.0))
    assert store.flush(10.0)
    store.close()
    again = Store(postgres_schema_url)
    again.start()
    assert again.load_state().ab_ratio == 0.7
    assert again.ab_summary()["arms"]["rl"]["outcomes"] == 1
    with again.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(suggestions)) == 20
    again.close()


def empty_the_database(url: str) -> None:
    """Drop every table, as a database dropped and created again: on PostgreSQL the test's
    schema, on SQLite the tables."""
    from sqlalchemy import text

    from rldispatch.service.log.tables import metadata

    engine = create_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            schema = connection.execute(text("select current_schema()")).scalar()
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    else:
        metadata.drop_all(engine)
    engine.dispose()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_database_that_comes_back_empty_gets_its_tables_and_switch_row_again(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from dataclasses import replace

    from rldispatch.service.decisions.manager import RLDispatchManager
    from rldispatch.service.log.switch_watcher import SwitchWatcher

    url = (
        f"sqlite:///{tmp_path / 'log.sqlite3'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_schema_url")
    )
    store = Store(url, retry_initial_s=0.05, retry_max_s=0.2)
    store.start()
    manager = RLDispatchManager(None)
    watcher = SwitchWatcher(store, manager)
    watcher.apply(store.update_state(lambda s: replace(s, enabled=True, ab_ratio=0.3)))
    store.record_suggestion(suggestion("before"))
    assert store.flush(10)
    empty_the_database(url)
    store.record_suggestion(suggestion("after"))
    assert store.flush(10)
    assert watcher.sync()
    saved = store.load_state()
    assert saved is not None and (saved.enabled, saved.ab_ratio) == (True, 0.3)
    assert manager.state.enabled and manager.state.version == saved.version
    engine = create_engine(url)
    with engine.connect() as connection:
        logged = connection.execute(select(suggestions.c.booking_id)).scalars().all()
    engine.dispose()
    store.close()
    assert logged == ["after"]
    assert (store.counts()["written"], store.counts()["lost"]) == (2, 0)


def test_a_round_is_one_entry_of_the_buffer_its_state_held_once(tmp_path: Path) -> None:
    import json

    from rldispatch.service.log.round_states import resolve_round_request
    from rldispatch.service.log.tables import round_states

    store = Store(f"sqlite:///{tmp_path / 'log.sqlite3'}", max_pending_bytes=400_000)
    state_json = json.dumps({"drivers": [{"id": f"d{i}", "note": "x" * 200} for i in range(4000)]})
    assert len(state_json) > 2 * store.max_pending_bytes  # larger than the buffer, as JSON
    records = [suggestion(f"b{i}") for i in range(300)]
    logged = store.record_round(records, {"minute_of_day": 600.0, "drivers": 4000}, state_json)
    assert logged is not None and logged.size_bytes < len(state_json) // 20
    counts = store.counts()
    assert (counts["pending"], counts["lost"]) == (300, 0)
    assert counts["pending_bytes"] < store.max_pending_bytes
    store.start()
    assert store.flush(10)
    engine = store.engine
    with engine.connect() as connection:
        requests = connection.execute(select(suggestions.c.request)).scalars().all()
        states = {
            key: text
            for key, text in connection.execute(
                select(round_states.c.state_key, round_states.c.state)
            )
        }
    store.close()
    assert len(requests) == 300 and len(states) == 1
    assert {request["round"]["state_key"] for request in requests} == {logged.key}
    assert resolve_round_request(requests[0], states)["state"] == json.loads(state_json)
    assert (store.counts()["written"], store.counts()["lost"]) == (300, 0)


def test_records_buffered_together_are_written_in_one_transaction(sqlite_url: str) -> None:
    store = Store(sqlite_url, gather_s=0.5)
    store.start()
    for index in range(20):
        store.record_suggestion(suggestion(f"b{index}"))
    assert store.flush(10.0)
    written, attempts = store.written, store.write_attempts
    store.close()
    assert (written, attempts) == (20, 1)
    assert booking_ids(sqlite_url) == [f"b{index}" for index in range(20)]
