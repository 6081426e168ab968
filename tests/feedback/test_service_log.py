"""The service's own decision log, collected into scenario days.

The log is made by the real service (the FastAPI app with its manager and store, in process)
answering the ``/rl/suggest`` requests of simulated days and taking their outcomes, as an
integrator calls it; a few malformed rows are then written by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, insert, select, text, update

from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.feedback.service_archive import ArchiveConflict
from rldispatch.feedback.service_log import (
    OUTCOMES,
    SUGGESTIONS,
    ServiceLogError,
    collect_service_days,
)
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.files import load_scenario, load_scenario_source
from rldispatch.scenarios.history import write_scenarios
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.config import ServiceConfig
from rldispatch.service.decisions.replay import state_body
from rldispatch.service.http.app import create_app
from rldispatch.service.log.retention import Retention
from rldispatch.service.log.store import create_store_engine
from rldispatch.service.log.tables import NOTHING_ASSIGNED, outcomes, suggestions
from tests.service.helpers import ADMIN_TOKEN, READ_TOKEN, auth

DAY_START_HOUR = 6.0
DAY_START_MIN = DAY_START_HOUR * 60.0
TODAY = datetime.now(UTC).date()
DAY_A = TODAY - timedelta(days=3)
DAY_B = TODAY - timedelta(days=2)
SMALL_DAY = TODAY - timedelta(days=1)


def after_today() -> date:
    """The day after the current date, read when called: rows logged "today" are before it
    even when a run crosses midnight after this module was imported."""
    return datetime.now(UTC).date() + timedelta(days=1)


SINCE, UNTIL = DAY_A, SMALL_DAY


def small_day(seed: int, day: date, bookings: int, drivers: int) -> Scenario:
    """A short Geneva day: its first bookings and drivers, ids made unique to the date (the
    service keeps one outcome per booking id)."""
    full = make_preset("geneva", seed)
    kept = sorted(full.bookings, key=lambda b: (b.requested_min, b.id))[:bookings]
    return replace(
        full,
        name=f"served-{day}",
        bookings=tuple(replace(b, id=f"{day}-{b.id}") for b in kept),
        drivers=full.drivers[:drivers],
    )


@dataclass
class ServedDay:
    scenario: Scenario
    asked: list[str]
    pickup_min: dict[str, float]


def clock(day: date, minute: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)


def play_day(client: TestClient, day: date, scenario: Scenario) -> ServedDay:
    """Play the day with the insertion heuristic; ask the service about each booking when it
    appears (the rest of the state as it is then), report each pickup's outcome after."""
    config = replace(EnvConfig(), max_drivers=len(scenario.drivers))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset(options={"scenario": scenario})
    policy = make_baseline("insertion")
    asked: list[str] = []
    terminated = False
    while not terminated:
        body = state_body(env.sim, DAY_START_MIN)
        for booking in body["open_bookings"]:
            if booking["id"] in asked:
                continue
            asked.append(booking["id"])
            others = [b for b in body["open_bookings"] if b["id"] != booking["id"]]
            answer = client.post(
                "/rl/suggest",
                json={**body, "booking": booking, "open_bookings": others},
                headers=auth(),
            )
            assert answer.status_code == 200, answer.text
        _, _, terminated, _, _ = env.step(int(policy.act(env)))
    sim = env.sim
    pickup_min = {}
    for index, booking in enumerate(scenario.bookings):
        if booking.id not in asked or np.isnan(sim.pickup_min[index]):
            continue
        pickup_min[booking.id] = float(sim.pickup_min[index])
        driver = scenario.drivers[int(sim.assigned_driver[index])].id
        reported = client.post(
            "/rl/outcome",
            json={
                "booking_id": booking.id,
                "driver_id": driver,
                "requested_pickup_at": clock(
                    day, DAY_START_MIN + booking.requested_min
                ).isoformat(),
                "picked_up_at": clock(day, DAY_START_MIN + pickup_min[booking.id]).isoformat(),
                "distance_km": 2.5,
            },
            headers=auth(),
        )
        assert reported.status_code == 202, reported.text
    return ServedDay(scenario, asked, pickup_min)


def service_app(url: str, data_dir: Path, **options: Any) -> TestClient:
    """:param options: further :meth:`ServiceConfig.from_env` options."""
    config = ServiceConfig.from_env(
        {"RLDISPATCH_TOKENS": READ_TOKEN, "RLDISPATCH_ADMIN_TOKENS": ADMIN_TOKEN},
        data_dir=data_dir,
        database_url=url,
        **options,
    )
    return TestClient(create_app(config))


def serve_days(url: str, data_dir: Path, days: dict[date, Scenario]) -> dict[date, ServedDay]:
    """Run the service in process over ``days``, then date each logged suggestion at its
    request's clock on its day (the service stamps the moment it answered: today)."""
    served = {}
    with service_app(url, data_dir) as client:
        for day, scenario in days.items():
            served[day] = play_day(client, day, scenario)
    date_rows_at_their_clock(url)
    return served


def date_rows_at_their_clock(url: str) -> None:
    """Each suggestion's ``created_at`` set to its request's clock on the date its booking id
    starts with."""
    engine = create_engine(url)
    with engine.begin() as connection:
        rows = connection.execute(
            select(suggestions.c.id, suggestions.c.booking_id, suggestions.c.request)
        ).all()
        for row_id, booking_id, request in rows:
            day = date.fromisoformat(booking_id[:10])
            connection.execute(
                update(suggestions)
                .where(suggestions.c.id == row_id)
                .values(created_at=clock(day, request["minute_of_day"]))
            )
    engine.dispose()


def add_malformed_rows(url: str) -> dict[str, int]:
    """Rows a log may hold that collect cannot use: their ids by kind."""
    engine = create_engine(url)
    with engine.begin() as connection:
        template = (
            connection.execute(
                select(suggestions).where(suggestions.c.booking_id.like(f"{DAY_A}-%")).limit(1)
            )
            .one()
            ._asdict()
        )
        template.pop("id")
        ids = {}

        def add(kind: str, **values: Any) -> None:
            ids[kind] = connection.execute(
                insert(suggestions).values({**template, **values})
            ).inserted_primary_key[0]

        broken = dict(template["request"])
        broken.pop("drivers")
        add("invalid", booking_id=f"{DAY_A}-broken", request=broken)
        add(
            "round",
            booking_id=f"{DAY_A}-round",
            request={"round": {"minute_of_day": 500.0, "drivers": 3}},
        )
        add("not_json", booking_id=f"{DAY_B}-text", request="placeholder")
        if connection.dialect.name == "sqlite":  # PostgreSQL's json type refuses such text
            connection.execute(
                text("UPDATE rl_suggestions SET request = '{not json' WHERE id = :id"),
                {"id": ids["not_json"]},
            )
        ids["unmatched_outcome"] = connection.execute(
            insert(outcomes).values(
                created_at=clock(DAY_B, 900),
                booking_id=f"{DAY_B}-never-suggested",
                driver_id="d1",
                requested_pickup_at=clock(DAY_B, 600),
                picked_up_at=clock(DAY_B, 610),
                pickup_delay_min=10.0,
                late=True,
                distance_km=3.0,
            )
        ).inserted_primary_key[0]
    engine.dispose()
    return ids


def all_row_ids(url: str) -> tuple[list[int], list[int]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        suggestion_ids = sorted(connection.execute(select(suggestions.c.id)).scalars())
        outcome_ids = sorted(connection.execute(select(outcomes.c.id)).scalars())
    engine.dispose()
    return suggestion_ids, outcome_ids


def build_log(url: str, data_dir: Path) -> tuple[dict[date, ServedDay], dict[str, int]]:
    days = {
        DAY_A: small_day(11, DAY_A, bookings=14, drivers=3),
        DAY_B: small_day(12, DAY_B, bookings=12, drivers=3),
        SMALL_DAY: small_day(13, SMALL_DAY, bookings=2, drivers=2),
    }
    served = serve_days(url, data_dir, days)
    return served, add_malformed_rows(url)


@pytest.fixture(scope="module")
def sqlite_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, dict]:
    folder = tmp_path_factory.mktemp("service_log")
    url = f"sqlite:///{folder / 'service.sqlite3'}"
    served, malformed = build_log(url, folder / "data")
    return url, served, malformed


def collect(url: str | None, **options: Any):
    return collect_service_days(
        url, SINCE, UNTIL, timezone="UTC", day_start_hour=DAY_START_HOUR, **options
    )


def check_days_match_what_was_served(result, served: dict[date, ServedDay]) -> None:
    assert [d.day for d in result.days] == [DAY_A, DAY_B]
    for collected in result.days:
        original = served[collected.day].scenario
        scenario = collected.scenario
        assert sorted(b.id for b in scenario.bookings) == sorted(served[collected.day].asked)
        assert len({b.id for b in scenario.bookings}) == len(scenario.bookings)
        by_id = {b.id: b for b in original.bookings}
        for booking in scenario.bookings:
            known = by_id[booking.id]
            assert booking.requested_min == pytest.approx(known.requested_min, abs=1e-6)
            assert booking.window[1] == pytest.approx(known.window[1], abs=1e-6)
            assert booking.window[0] == pytest.approx(max(known.window[0], 0.0), abs=1e-6)
            assert booking.pickup == pytest.approx(known.pickup)
            assert booking.dropoff == pytest.approx(known.dropoff)
            assert (booking.service_min, booking.priority, booking.load) == (
                known.service_min,
                known.priority,
                known.load,
            )
            assert booking.release_min >= known.release_min - 1e-6
        assert [d.id for d in scenario.drivers] == [d.id for d in original.drivers]
        for driver, known in zip(scenario.drivers, original.drivers, strict=True):
            assert driver.start == pytest.approx(known.start)
            assert driver.shift == pytest.approx((known.shift[0], min(known.shift[1], 840.0)))
            assert driver.capacity == known.capacity
        outcomes_by_booking = {o["booking_id"]: o for o in collected.source["outcomes"]}
        assert set(outcomes_by_booking) == set(served[collected.day].pickup_min)
        for booking_id, minute in served[collected.day].pickup_min.items():
            assert outcomes_by_booking[booking_id]["picked_up_min"] == pytest.approx(minute)


def check_every_row_accounted_once(result, url: str) -> None:
    suggestion_ids, outcome_ids = all_row_ids(url)
    placed_suggestions = [i for d in result.days for i in d.source["provenance"]["suggestion_ids"]]
    placed_outcomes = [i for d in result.days for i in d.source["provenance"]["outcome_ids"]]
    placed_suggestions += [i for d in result.skipped for i in d.suggestion_ids]
    placed_outcomes += [i for d in result.skipped for i in d.outcome_ids]
    placed_suggestions += [r.row_id for r in result.skipped_rows if r.table == "rl_suggestions"]
    placed_outcomes += [r.row_id for r in result.skipped_rows if r.table == "rl_outcomes"]
    assert sorted(placed_suggestions) == suggestion_ids
    assert sorted(placed_outcomes) == outcome_ids
    totals = result.totals
    assert totals["suggestions_read"] == len(suggestion_ids)
    assert totals["suggestions_used"] + totals["suggestions_skipped"] == len(suggestion_ids)
    assert totals["outcomes_read"] == len(outcome_ids)
    assert totals["outcomes_matched"] + totals["outcomes_skipped"] == len(outcome_ids)
    per_day = [d.counts for d in result.days] + [d.counts for d in result.skipped]
    for name, total in totals.items():
        if name != "bookings_outside_range":
            assert sum(counts[name] for counts in per_day) == total


def test_each_service_day_becomes_one_scenario_with_each_booking_once(sqlite_log) -> None:
    url, served, _ = sqlite_log

    result = collect(url)

    check_days_match_what_was_served(result, served)
    first = result.days[0]
    assert first.scenario.name == f"service-{DAY_A}"
    assert first.counts["suggestions_used"] == len(served[DAY_A].asked)
    assert first.counts["outcomes_matched"] == len(served[DAY_A].pickup_min)


def test_bookings_known_at_the_start_are_released_at_zero_and_later_ones_when_first_shown(
    sqlite_log,
) -> None:
    url, served, _ = sqlite_log

    scenario = collect(url).days[0].scenario

    releases = {b.id: b.release_min for b in scenario.bookings}
    original = {b.id: b.release_min for b in served[DAY_A].scenario.bookings}
    assert any(r == 0.0 for r in releases.values())
    for booking_id, release in releases.items():
        if original[booking_id] == 0.0:
            assert release == 0.0
        else:
            assert release >= original[booking_id]


def test_the_day_file_records_provenance_and_outcomes_and_still_loads(sqlite_log, tmp_path) -> None:
    url, _, _ = sqlite_log
    result = collect(url)

    paths = write_scenarios(result, tmp_path)

    loaded = load_scenario(paths[0])
    assert loaded == result.days[0].scenario
    source = load_scenario_source(paths[0])
    assert source["kind"] == "service_log"
    assert source["provenance"]["suggestion_ids"] == [
        d["suggestion_id"] for d in source["decisions"]
    ]
    assert source["provenance"]["outcome_ids"] == [o["outcome_id"] for o in source["outcomes"]]
    assert {o["late"] for o in source["outcomes"]} <= {True, False}


def test_a_day_with_too_few_bookings_is_skipped_whole_with_its_rows(sqlite_log) -> None:
    url, served, _ = sqlite_log

    result = collect(url)

    skipped = {d.day: d for d in result.skipped}
    assert SMALL_DAY in skipped
    assert "fewer than the 5" in skipped[SMALL_DAY].reason
    assert len(skipped[SMALL_DAY].suggestion_ids) == len(served[SMALL_DAY].asked)
    assert len(skipped[SMALL_DAY].outcome_ids) == len(served[SMALL_DAY].pickup_min)


def test_min_bookings_decides_which_days_are_too_small(sqlite_log) -> None:
    url, _, _ = sqlite_log

    assert [d.day for d in collect(url, min_bookings=1).days] == [DAY_A, DAY_B, SMALL_DAY]
    assert [d.day for d in collect(url, min_bookings=11).days] == [DAY_A]


def test_malformed_rows_are_reported_with_their_ids_and_skipped(sqlite_log) -> None:
    url, _, malformed = sqlite_log

    result = collect(url)

    reasons = {(r.table, r.row_id): r.reason for r in result.skipped_rows}
    assert "request does not validate: drivers" in reasons[("rl_suggestions", malformed["invalid"])]
    assert "/rl/round" in reasons[("rl_suggestions", malformed["round"])]
    assert "not JSON" in reasons[("rl_suggestions", malformed["not_json"])]
    assert "no used suggestion" in reasons[("rl_outcomes", malformed["unmatched_outcome"])]
    assert len(result.skipped_rows) == 4
    day_a = result.days[0]
    assert day_a.counts["suggestions_skipped"] == 3  # the three rows stamped on day A
    assert malformed["invalid"] not in day_a.source["provenance"]["suggestion_ids"]


def test_every_suggestion_and_outcome_is_in_one_day_or_the_skipped_report(sqlite_log) -> None:
    url, _, _ = sqlite_log

    check_every_row_accounted_once(collect(url), url)
    check_every_row_accounted_once(collect(url, min_bookings=11), url)


def test_collecting_twice_gives_the_same_bytes(sqlite_log, tmp_path) -> None:
    url, _, _ = sqlite_log

    first = write_scenarios(collect(url), tmp_path / "first")
    second = write_scenarios(collect(url), tmp_path / "second")

    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_collect_never_writes_to_the_service_database(sqlite_log) -> None:
    url, _, _ = sqlite_log
    engine = create_engine(url)

    def snapshot() -> tuple:
        with engine.connect() as connection:
            return (
                connection.execute(text("select * from rl_suggestions order by id")).all(),
                connection.execute(text("select * from rl_outcomes order by id")).all(),
                connection.execute(text("select name from sqlite_master")).all(),
            )

    before = snapshot()
    collect(url)
    assert snapshot() == before
    engine.dispose()


def test_a_range_outside_the_log_collects_nothing(sqlite_log) -> None:
    url, _, _ = sqlite_log

    result = collect_service_days(url, date(2020, 1, 1), date(2020, 1, 31))

    assert result.days == () and result.skipped == () and result.skipped_rows == ()
    assert result.totals["suggestions_read"] == 0


def test_the_table_names_are_the_service_s() -> None:
    assert (suggestions.name, outcomes.name) == (SUGGESTIONS, OUTCOMES)


def test_a_database_without_the_service_tables_is_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    with pytest.raises(ServiceLogError, match="rl_suggestions: no such table"):
        collect(url)


def test_an_unknown_timezone_is_refused(sqlite_log) -> None:
    url, _, _ = sqlite_log

    with pytest.raises(ServiceLogError, match="timezone: unknown time zone 'Mars/Base'"):
        collect_service_days(url, SINCE, UNTIL, timezone="Mars/Base")


def test_the_timezone_moves_the_clock_of_rows_without_one(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    served = serve_days(url, tmp_path / "data", {DAY_A: small_day(11, DAY_A, 8, 2)})
    engine = create_engine(url)
    with engine.begin() as connection:
        for row_id, request in connection.execute(
            select(suggestions.c.id, suggestions.c.request)
        ).all():
            request = dict(request)
            minute = request.pop("minute_of_day")
            connection.execute(
                update(suggestions)
                .where(suggestions.c.id == row_id)
                .values(request=request, created_at=clock(DAY_A, minute - 60.0))
            )
        count = connection.execute(select(func.count()).select_from(suggestions)).scalar()
    engine.dispose()

    result = collect_service_days(
        url, DAY_A, DAY_A, timezone="Europe/Zurich", day_start_hour=DAY_START_HOUR
    )

    assert count == len(served[DAY_A].asked)
    scenario = result.days[0].scenario
    by_id = {b.id: b for b in served[DAY_A].scenario.bookings}
    offset = clock(DAY_A, DAY_START_MIN).astimezone(ZoneInfo("Europe/Zurich")).utcoffset()
    assert offset in (timedelta(hours=1), timedelta(hours=2))
    shift = offset - timedelta(hours=1)
    for booking in scenario.bookings:
        expected = by_id[booking.id].requested_min + shift / timedelta(minutes=1)
        assert booking.requested_min == pytest.approx(expected, abs=1e-6)


@pytest.mark.postgres
def test_postgres_log_collects_the_same_days_and_accounts_for_every_row(
    postgres_schema_url, tmp_path
) -> None:
    served, malformed = build_log(postgres_schema_url, tmp_path / "data")

    result = collect(postgres_schema_url)

    check_days_match_what_was_served(result, served)
    check_every_row_accounted_once(result, postgres_schema_url)
    assert {r.row_id for r in result.skipped_rows if r.table == "rl_suggestions"} == {
        malformed["invalid"],
        malformed["round"],
        malformed["not_json"],
    }
    first = write_scenarios(result, tmp_path / "first")
    second = write_scenarios(collect(postgres_schema_url), tmp_path / "second")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_a_booking_shown_twice_keeps_its_first_request_and_a_shift_without_start_begins_when_seen(
    tmp_path,
) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"

    def booking(number: int, requested_in_min: float) -> dict[str, Any]:
        return {
            "id": f"{DAY_A}-b{number}",
            "pickup": {"lat": 46.20, "lon": 6.14 + number / 1000},
            "dropoff": {"lat": 46.21, "lon": 6.15},
            "requested_in_min": requested_in_min,
            "window_opens_in_min": requested_in_min - 10,
            "window_closes_in_min": requested_in_min + 30,
        }

    def body(minute: float, asked: dict, others: list, shift_ends_in_min: float) -> dict:
        return {
            "booking": asked,
            "open_bookings": others,
            "minute_of_day": minute,
            "drivers": [
                {
                    "id": "d1",
                    "position": {"lat": 46.2 + minute / 10_000, "lon": 6.14},
                    "shift_ends_in_min": shift_ends_in_min,
                }
            ],
        }

    first = body(420.0, booking(1, 60.0), [booking(2, 120.0)], shift_ends_in_min=300.0)
    later = body(450.0, booking(2, 95.0), [booking(3, 40.0)], shift_ends_in_min=400.0)
    with service_app(url, tmp_path / "data") as client:
        for request in (first, later):
            answer = client.post("/rl/suggest", json=request, headers=auth())
            assert answer.status_code == 200, answer.text
    date_rows_at_their_clock(url)
    engine = create_engine(url)
    with engine.begin() as connection:  # reported with a requested time far from the day
        connection.execute(
            insert(outcomes).values(
                created_at=clock(DAY_A, 1000),
                booking_id=f"{DAY_A}-b1",
                requested_pickup_at=clock(DAY_A + timedelta(days=5), 480),
                picked_up_at=clock(DAY_A + timedelta(days=5), 490),
                pickup_delay_min=10.0,
                late=True,
                distance_km=4.0,
            )
        )
    engine.dispose()

    result = collect_service_days(url, DAY_A, DAY_A, day_start_hour=6.0, min_bookings=1)

    scenario = result.days[0].scenario
    bookings = {b.id: b for b in scenario.bookings}
    assert sorted(bookings) == [f"{DAY_A}-b1", f"{DAY_A}-b2", f"{DAY_A}-b3"]
    assert bookings[f"{DAY_A}-b2"].release_min == 60.0  # 07:00, the first request
    assert bookings[f"{DAY_A}-b2"].requested_min == 60.0 + 120.0  # not the later 95
    assert bookings[f"{DAY_A}-b3"].release_min == 90.0
    assert bookings[f"{DAY_A}-b3"].window == (90.0 + 30.0, 90.0 + 70.0)
    (driver,) = scenario.drivers
    assert driver.shift == (60.0, 90.0 + 400.0)  # first seen at 07:00, the latest end given
    assert driver.start == (46.2 + 420.0 / 10_000, 6.14)
    assert result.days[0].source["provenance"] == {"suggestion_ids": [1, 2], "outcome_ids": [1]}
    assert result.days[0].source["outcomes"][0]["booking_id"] == f"{DAY_A}-b1"


def test_a_day_served_in_rounds_is_rebuilt_from_the_states_the_rounds_logged(
    tmp_path: Path,
) -> None:
    """Rounds sent with their ``service_date`` (a day replayed today) land on that day, and
    the rounds' logged states give its bookings: each assigned booking once, as served."""
    from rldispatch.service.decisions.replay import replay_day

    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    scenario = small_day(21, DAY_A, bookings=16, drivers=3)
    config = replace(EnvConfig(), max_drivers=len(scenario.drivers))
    sent: set[str] = set()
    with service_app(url, tmp_path / "data") as client:

        def post_round(body: dict) -> dict:
            sent.update(b["id"] for b in body["open_bookings"])
            answer = client.post(
                "/rl/round", json={**body, "service_date": DAY_A.isoformat()}, headers=auth()
            )
            assert answer.status_code == 200, answer.text
            return answer.json()

        replayed = replay_day(
            post_round, make_baseline("insertion"), scenario, config, DAY_START_MIN
        )
    assert replayed.differing == 0
    suggestion_ids, _ = all_row_ids(url)
    result = collect_service_days(
        url, DAY_A, DAY_A, timezone="UTC", day_start_hour=DAY_START_HOUR, min_bookings=1
    )
    assert [d.day for d in result.days] == [DAY_A]
    assert result.skipped_rows == ()
    collected = result.days[0]
    assert sorted(collected.source["provenance"]["suggestion_ids"]) == suggestion_ids
    engine = create_engine(url)
    with engine.connect() as connection:
        assigned = set(connection.execute(select(suggestions.c.booking_id)).scalars())
    engine.dispose()
    assigned.discard(NOTHING_ASSIGNED)
    rebuilt = {b.id: b for b in collected.scenario.bookings}
    assert len(rebuilt) == len(collected.scenario.bookings)
    assert assigned < sent == set(rebuilt)  # some only waited: collected all the same
    original = {b.id: b for b in scenario.bookings}
    for booking_id, booking in rebuilt.items():
        assert booking.requested_min == pytest.approx(original[booking_id].requested_min)
        assert booking.pickup == pytest.approx(original[booking_id].pickup)


def round_booking(day: date, number: int, requested_in_min: float) -> dict[str, Any]:
    return {
        "id": f"{day}-r{number}",
        "pickup": {"lat": 46.20, "lon": 6.14 + number / 1000},
        "dropoff": {"lat": 46.21, "lon": 6.15},
        "requested_in_min": requested_in_min,
        "window_opens_in_min": requested_in_min - 10,
        "window_closes_in_min": requested_in_min + 30,
    }


def round_body(day: date, minute: float, open_bookings: list[dict[str, Any]]) -> dict[str, Any]:
    """A round of one driver on ``day`` (its ``service_date``) at ``minute`` of the day."""
    driver = {"id": "d1", "position": {"lat": 46.2, "lon": 6.14}, "shift_ends_in_min": 300}
    return {
        "drivers": [driver],
        "open_bookings": open_bookings,
        "minute_of_day": minute,
        "service_date": day.isoformat(),
    }


def play_rounds(client: TestClient, day: date) -> list[dict[str, Any]]:
    """Three rounds: the first places a booking, the two others place nothing (the second
    booking's window opens beyond the lookahead: it waits, then it is cancelled)."""
    bodies = (
        round_body(day, 420.0, [round_booking(day, 1, 20.0)]),
        round_body(day, 430.0, [round_booking(day, 2, 400.0)]),
        round_body(day, 440.0, [round_booking(day, 2, 390.0)]),
    )
    answers = [client.post("/rl/round", json=body, headers=auth()).json() for body in bodies]
    assert [len(a["assignments"]) for a in answers] == [1, 0, 0]
    return answers


def test_a_booking_that_only_waited_through_rounds_that_assigned_nothing_is_collected(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with service_app(url, tmp_path / "data") as client:
        play_rounds(client, DAY_A)

    result = collect_service_days(url, DAY_A, DAY_A, day_start_hour=6.0, min_bookings=1)

    (day,) = result.days
    bookings = {b.id: b for b in day.scenario.bookings}
    assert sorted(bookings) == [f"{DAY_A}-r1", f"{DAY_A}-r2"]
    assert bookings[f"{DAY_A}-r2"].release_min == 70.0  # 07:10, the round that first showed it
    assert bookings[f"{DAY_A}-r2"].requested_min == 70.0 + 400.0
    assert day.source["provenance"]["suggestion_ids"] == [1, 2, 3]
    waited = [d for d in day.source["decisions"] if d["booking_id"] is None]
    assert [(d["suggestion_id"], d["driver_id"], d["at_min"]) for d in waited] == [
        (2, None, 70.0),
        (3, None, 80.0),
    ]
    assert day.counts["suggestions_used"] == 3
    assert day.counts["rounds_without_assignment"] == 2
    assert result.skipped_rows == ()


def test_collected_days_travel_as_the_service_played_them(tmp_path: Path) -> None:
    """The log records the travel each request was played with (its own block, else the
    service's ``--travel``) and the service's road network: a rebuilt day travels so."""
    from rldispatch.scenarios.presets import GENEVA_CENTRE
    from rldispatch.scenarios.street_grid import write_street_grid

    grid = write_street_grid(tmp_path / "grid.osm.pbf", GENEVA_CENTRE, 8, 8, spacing_km=0.9)
    served = {"speed_kmh": 30.0, "detour": 1.35, "hourly_speed_factor": [1.0] * 24}
    (tmp_path / "travel.json").write_text(json.dumps(served))
    own = {"speed_kmh": 20.0, "detour": 1.5, "start_hour": 5.0}
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    options = {"travel_path": tmp_path / "travel.json", "road_network_path": grid}
    with service_app(url, tmp_path / "data", **options) as client:
        play_rounds(client, DAY_A)
        for number, travel in ((1, own), (2, own), (3, None)):
            body = round_body(DAY_B, 420.0 + number, [])
            body["booking"] = round_booking(DAY_B, number, 30.0)
            answer = client.post(
                "/rl/suggest",
                json={**body, **({"travel": travel} if travel else {})},
                headers=auth(),
            )
            assert answer.status_code == 200, answer.text

    result = collect_service_days(url, DAY_A, DAY_B, day_start_hour=6.0, min_bookings=1)

    assert result.skipped_rows == ()
    rounds, suggested = result.days
    assert rounds.scenario.travel.speed_kmh == 30.0 and rounds.scenario.travel.detour == 1.35
    assert rounds.scenario.travel.hourly_speed_factor == (1.0,) * 24
    assert suggested.scenario.travel.speed_kmh == 20.0 and suggested.scenario.travel.detour == 1.5
    for day in result.days:
        assert day.scenario.travel.road_network == str(grid)
        assert day.scenario.travel.start_hour == 6.0  # the collected day's minute 0
    assert "1 request played with another travel model than the day's" in " ".join(suggested.notes)
    assert not any("travel" in note for note in rounds.notes)


def pruned_to(url: str, archive: Path, first_kept: date, *, cut_short: bool = False) -> None:
    """Prune the log's days before ``first_kept`` into ``archive``, as ``serve --retain-days
    1 --archive-dir`` does (``cut_short``: the files written, the rows not deleted yet)."""
    engine = create_store_engine(url)
    retention = Retention(engine, retain_days=1, archive_dir=archive)
    now = clock(first_kept + timedelta(days=1), 0.0)
    if cut_short:
        retention._delete = lambda table, ids: 0  # type: ignore[method-assign]
    retention.prune_once(now)
    engine.dispose()


def log_for_the_archive(url: str, data_dir: Path) -> None:
    """The served days with their malformed rows (on SQLite one whose request is text that is
    not JSON), and rounds."""
    build_log(url, data_dir)
    with service_app(url, data_dir) as client:  # day B also served in rounds, logged today
        play_rounds(client, DAY_B)


def written(result, folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in write_scenarios(result, folder)]


def skipped_rows_of(result) -> list[tuple]:
    return [(r.table, r.row_id, r.reason, r.day) for r in result.skipped_rows]


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_days_pruned_to_the_archive_are_collected_as_they_were_from_the_database(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'service.sqlite3'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_schema_url")
    )
    log_for_the_archive(url, tmp_path / "data")
    before = collect(url)
    expected = written(before, tmp_path / "before")
    assert len(expected) == 2
    archive = tmp_path / "archive"

    # A pass cut short: day A both in its file and in the database, read once.
    pruned_to(url, archive, DAY_B, cut_short=True)
    assert sorted(p.name for p in archive.glob("*.jsonl")) == [f"rl_suggestions-{DAY_A}.jsonl"]
    both = collect(url, archive_dir=archive)
    assert written(both, tmp_path / "both") == expected

    # Day A pruned: from the archive, the rest from the database.
    pruned_to(url, archive, DAY_B)
    partly = collect(url, archive_dir=archive)
    assert written(partly, tmp_path / "partly") == expected
    assert skipped_rows_of(partly) == skipped_rows_of(before)

    # Everything pruned (outcomes too: they were reported today): the archive alone.
    pruned_to(url, archive, after_today())
    assert all_row_ids(url) == ([], [])
    archived = collect(None, archive_dir=archive)
    assert written(archived, tmp_path / "archived") == expected
    assert skipped_rows_of(archived) == skipped_rows_of(before)
    if database == "sqlite":  # the row whose request text is not JSON was archived as it was
        assert any("not JSON" in row.reason for row in archived.skipped_rows)
    for row in archived.skipped_rows:  # each skipped row is reported with its file and line
        name, number = row.archive.split(" line ")
        line = (archive / name).read_text().splitlines()[int(number) - 1]
        assert name.startswith(row.table) and json.loads(line)["id"] == row.row_id
    assert archived.totals == before.totals
    assert [d.counts for d in archived.days] == [d.counts for d in before.days]
    assert [(d.day, d.suggestion_ids, d.outcome_ids) for d in archived.skipped] == [
        (d.day, d.suggestion_ids, d.outcome_ids) for d in before.skipped
    ]


@pytest.fixture(scope="module")
def archived_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes], Any]:
    """A log collected, then pruned wholly into an archive folder."""
    folder = tmp_path_factory.mktemp("archived_log")
    url = f"sqlite:///{folder / 'service.sqlite3'}"
    log_for_the_archive(url, folder / "data")
    before = collect(url)
    expected = written(before, folder / "before")
    pruned_to(url, folder / "archive", after_today())
    return folder / "archive", expected, before


def test_bad_and_truncated_archive_lines_are_reported_and_skipped(archived_log, tmp_path) -> None:
    source, expected, before = archived_log
    archive = tmp_path / "archive"
    archive.mkdir()
    for path in source.glob("*.jsonl"):
        (archive / path.name).write_bytes(path.read_bytes())
    day_a = archive / f"rl_suggestions-{DAY_A}.jsonl"
    first = json.loads(day_a.read_text().splitlines()[0])
    no_booking = {k: v for k, v in first.items() if k != "booking_id"} | {"id": 90001}
    bad_time = first | {"id": 90002, "created_at": "yesterday"}
    with day_a.open("a") as file:
        file.write("not json at all\n")
        file.write("[1, 2]\n")
        file.write(json.dumps(no_booking) + "\n")
        file.write(json.dumps(bad_time) + "\n")
        file.write('\xff{"id": 90003}\n')
        file.write(json.dumps(first | {"id": 90004})[:-20])  # truncated: no newline either

    result = collect(None, archive_dir=archive)

    assert written(result, tmp_path / "days") == expected
    known = {(r.table, r.row_id) for r in before.skipped_rows}
    added = [r for r in result.skipped_rows if (r.table, r.row_id) not in known]
    lines = len(day_a.read_text().splitlines())
    assert [(r.row_id, r.archive, r.reason.split(" (")[0]) for r in added] == [
        (90001, f"{day_a.name} line {lines - 3}", "booking_id: missing"),
        (
            90002,
            f"{day_a.name} line {lines - 2}",
            "created_at: Invalid isoformat string: 'yesterday'",
        ),
        (None, f"{day_a.name} line {lines - 5}", "not JSON"),
        (None, f"{day_a.name} line {lines - 4}", "not a JSON object"),
        (None, f"{day_a.name} line {lines - 1}", "not JSON"),
        (None, f"{day_a.name} line {lines}", "not JSON"),
    ]
    assert all(r.day == DAY_A and r.table == SUGGESTIONS for r in added)
    assert result.days[0].counts["suggestions_skipped"] == before.days[0].counts[
        "suggestions_skipped"
    ] + len(added)
    assert "(archive rl_suggestions-" in str(added[0])


def test_an_archive_of_another_database_is_refused(archived_log, tmp_path) -> None:
    archive, _, _ = archived_log
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    with service_app(url, tmp_path / "data") as client:
        play_rounds(client, DAY_B)  # rows 1 to 3 again, other bookings

    with pytest.raises(
        ArchiveConflict, match="rl_suggestions row 1 is another row in the database"
    ):
        collect(url, archive_dir=archive)


def test_a_missing_archive_folder_is_refused(tmp_path) -> None:
    with pytest.raises(ServiceLogError, match="archive_dir: .* is not a folder"):
        collect(None, archive_dir=tmp_path / "nowhere")
