"""The A/B figures per arm and per model version: suggestions and what their outcomes say."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from rldispatch.service.log.ab_figures import ab_summary
from rldispatch.service.log.store import create_store_engine
from rldispatch.service.log.tables import NOTHING_ASSIGNED, ensure_schema, outcomes, suggestions

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    ensure_schema(engine)
    yield engine
    engine.dispose()


def suggest(engine: Engine, booking: str, arm: str, version: str, times: int = 1) -> None:
    row = {
        "created_at": NOW,
        "booking_id": booking,
        "arm": arm,
        "source": "rl" if arm == "rl" else "fallback",
        "model_version": version,
        "latency_ms": 1.0,
        "request": {},
        "response": {},
    }
    with engine.begin() as connection:
        connection.execute(insert(suggestions), [row] * times)


def outcome(
    engine: Engine,
    booking: str,
    arm: str | None,
    version: str,
    delay_min: float,
    km: float,
    source: str | None = None,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(outcomes).values(
                created_at=NOW,
                booking_id=booking,
                requested_pickup_at=NOW,
                picked_up_at=NOW + timedelta(minutes=delay_min),
                pickup_delay_min=delay_min,
                late=delay_min > 5.0,
                distance_km=km,
                arm=arm,
                source=source,
                model_version=version,
            )
        )


def test_each_model_version_has_its_own_outcome_figures(engine: Engine) -> None:
    for k in range(4):  # the champion: 4 bookings (one suggested twice), 2 picked up
        suggest(engine, f"a{k}", "rl", "champion-v", times=2 if k == 0 else 1)
    outcome(engine, "a0", "rl", "champion-v", delay_min=10.0, km=2.0)
    outcome(engine, "a1", "rl", "champion-v", delay_min=0.0, km=4.0)
    for k in range(2):  # the challenger: 2 bookings, both picked up on time
        suggest(engine, f"b{k}", "rl", "challenger-v")
        outcome(engine, f"b{k}", "rl", "challenger-v", delay_min=1.0, km=6.0)
    suggest(engine, "h0", "heuristic", "champion-v")  # the heuristic arm: not a version's
    outcome(engine, "h0", "heuristic", "champion-v", delay_min=30.0, km=50.0)
    with engine.connect() as connection:
        summary = ab_summary(connection)
    by_version = summary["rl_by_model_version"]
    assert by_version["champion-v"] == {
        "suggestions": 5,
        "bookings": 4,
        "outcomes": 2,
        "completion_rate": 0.5,
        "late_rate": 0.5,
        "mean_distance_km": 3.0,
        "mean_pickup_delay_min": 5.0,
    }
    assert by_version["challenger-v"] == {
        "suggestions": 2,
        "bookings": 2,
        "outcomes": 2,
        "completion_rate": 1.0,
        "late_rate": 0.0,
        "mean_distance_km": 6.0,
        "mean_pickup_delay_min": 1.0,
    }
    rl = summary["arms"]["rl"]
    assert (rl["bookings"], rl["outcomes"], rl["completion_rate"]) == (6, 4, 4 / 6)
    assert summary["arms"]["heuristic"]["mean_distance_km"] == 50.0


def test_a_version_without_outcomes_has_no_rates(engine: Engine) -> None:
    suggest(engine, "a0", "rl", "new-v")
    with engine.connect() as connection:
        figures = ab_summary(connection)["rl_by_model_version"]["new-v"]
    assert figures["outcomes"] == 0 and figures["completion_rate"] == 0.0
    assert figures["late_rate"] is None and figures["mean_distance_km"] is None


def round_row(engine: Engine, booking: str, source: str, version: str) -> None:
    """A ``/rl/round`` row: no arm (a round is played whole)."""
    with engine.begin() as connection:
        connection.execute(
            insert(suggestions).values(
                created_at=NOW,
                booking_id=booking,
                arm=None,
                source=source,
                model_version=version,
                latency_ms=1.0,
                request={"round": {"minute_of_day": 600.0, "drivers": 2}, "state": {}},
                response={},
            )
        )


def test_a_version_adds_its_rl_arm_bookings_and_round_assignments_each_once(
    engine: Engine,
) -> None:
    suggest(engine, "a0", "rl", "v")  # the model answered
    with engine.begin() as connection:  # the fallback answered a booking of the rl arm
        connection.execute(
            insert(suggestions).values(
                created_at=NOW,
                booking_id="a1",
                arm="rl",
                source="fallback",
                reason="no_feasible_driver",
                model_version="v",
                latency_ms=1.0,
                request={},
                response={},
            )
        )
    round_row(engine, "r0", "rl", "v")
    round_row(engine, "a0", "rl", "v")  # the same booking assigned again by a round
    outcome(engine, "a1", "rl", "v", delay_min=0.0, km=1.0)
    with engine.connect() as connection:
        figures = ab_summary(connection)["rl_by_model_version"]["v"]
    assert (figures["suggestions"], figures["bookings"], figures["outcomes"]) == (4, 3, 1)


def test_a_round_that_assigned_nothing_is_no_suggestion_and_no_booking(engine: Engine) -> None:
    round_row(engine, "r0", "rl", "v")
    for _ in range(3):
        round_row(engine, NOTHING_ASSIGNED, "rl", "v")
    round_row(engine, NOTHING_ASSIGNED, "rl", "only-waited-v")
    with engine.connect() as connection:
        summary = ab_summary(connection)
    figures = summary["rl_by_model_version"]
    assert (figures["v"]["suggestions"], figures["v"]["bookings"]) == (1, 1)
    assert "only-waited-v" not in figures
    arms = summary["arms"]
    assert (arms["rl"]["suggestions"], arms["rl"]["bookings"]) == (1, 1)  # the assignment
    assert arms["heuristic"]["suggestions"] == 0


def test_the_rl_arm_counts_the_rows_its_model_versions_count(engine: Engine) -> None:
    suggest(engine, "a0", "rl", "champion")
    suggest(engine, "h0", "heuristic", "champion")
    round_row(engine, "r0", "rl", "champion")  # the model's round assignments: the rl arm
    round_row(engine, "r1", "rl", "challenger")
    round_row(engine, "r2", "fallback", "champion")  # the fallback's round: no arm
    outcome(engine, "r1", None, "challenger", delay_min=2.0, km=3.0, source="rl")
    with engine.connect() as connection:
        summary = ab_summary(connection)
    versions = summary["rl_by_model_version"].values()
    rl = summary["arms"]["rl"]
    for name in ("suggestions", "bookings", "outcomes"):
        assert rl[name] == sum(figures[name] for figures in versions), name
    assert (rl["suggestions"], rl["outcomes"]) == (3, 1)
    assert summary["arms"]["heuristic"]["suggestions"] == 1
