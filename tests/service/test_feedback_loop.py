"""The production feedback loop, end to end, on SQLite and on PostgreSQL.

A real ``rldispatch serve`` process serves a weak champion; twelve days of operation are
replayed through its HTTP API (a round at every decision, each ride's outcome reported after
the day); ``collect --service-db`` turns the log into day files; ``train --agent pairwise
--scenarios`` learns on the first week; ``promote`` gates the new model against the served
one on the five later days, hands it to the service and is then refused for the old model;
``/rl/status`` shows the new version without a restart, and ``/rl/metrics`` splits the
outcomes of a day operated after the promotion by version.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import main
from rldispatch.domain import Scenario
from rldispatch.scenarios.files import load_scenario, load_scenario_source
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.decisions.replay import dated, replay_days_through
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.log.tables import outcomes, suggestions
from tests.service.helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    ServerProcess,
    auth,
    make_pairwise_model_file,
    seek_detours_and_lateness,
    switch_rl_on,
)

TRAINING_DAYS = 7
GATE_DAYS = 5
FIRST_DAY = datetime.now(UTC).date() - timedelta(days=TRAINING_DAYS + GATE_DAYS + 1)
DAYS = [FIRST_DAY + timedelta(days=k) for k in range(TRAINING_DAYS + GATE_DAYS)]
AFTER_PROMOTION = DAYS[-1] + timedelta(days=1)
DRIVERS, BOOKINGS = 4, 30


def small_day(seed: int, service_date: date) -> Scenario:
    """A few drivers and bookings spread over a geneva day, the booking ids made unique to its
    date."""
    full = make_preset("geneva", seed)
    ordered = sorted(full.bookings, key=lambda b: (b.requested_min, b.id))
    kept = ordered[:: max(1, len(ordered) // BOOKINGS)][:BOOKINGS]
    return dated(replace(full, bookings=tuple(kept), drivers=full.drivers[:DRIVERS]), service_date)


def count_rows(url: str, table) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return int(count)


def collect(url: str, out: Path, until: date) -> int:
    return main(
        [
            "collect",
            "--service-db",
            url,
            "--since",
            DAYS[0].isoformat(),
            "--until",
            until.isoformat(),
            "--min-bookings",
            "5",
            "--out",
            str(out),
        ]
    )


def promote(url: str, server: ServerProcess, days: Path, challenger: Path, out: Path) -> int:
    return main(
        [
            "promote",
            "--challenger",
            str(challenger),
            "--days",
            str(days),
            "--holdout",
            str(GATE_DAYS),
            "--service",
            server.url,
            "--token",
            ADMIN_TOKEN,
            "--database-url",
            url,
            "--by",
            "feedback-loop-test",
            "--json",
            str(out),
        ]
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.sqlite3'}"
    return request.getfixturevalue("postgres_schema_url")


@pytest.mark.slow
def test_the_service_log_becomes_training_days_and_a_promoted_model(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    champion = make_pairwise_model_file(
        models / "champion.safetensors",
        seed=1,
        tweak=seek_detours_and_lateness,
    )
    champion_model = load_learned_model(champion)
    week = {day: small_day(100 + k, day) for k, day in enumerate(DAYS)}
    config = champion_model.env_config_for(list(week.values()))
    day_start = LiveDay.from_preset("geneva").start_min

    with ServerProcess(
        tmp_path / "data",
        model=champion,
        database_url=database_url,
        extra_args=("--models-dir", str(models)),
    ) as server:
        switch_rl_on(server.url)
        replayed = replay_days_through(
            server.url, READ_TOKEN, week, champion_model.policy, config, day_start
        )
        assert all(day.differing == 0 for day in replayed.values())
        served = sum(
            day.metrics.completion_rate * len(week[d].bookings) for d, day in replayed.items()
        )

        # The log, collected twice: every row accounted for, each booking once.
        assert collect(database_url, tmp_path / "days", DAYS[-1]) == 0
        assert collect(database_url, tmp_path / "again", DAYS[-1]) == 0
        files = sorted((tmp_path / "days").glob("*.json"))
        assert [f.name for f in files] == [f"{day}.json" for day in DAYS]
        for path in files:
            assert path.read_bytes() == (tmp_path / "again" / path.name).read_bytes()
        suggestion_ids, outcome_ids, booking_ids = [], [], []
        for path in files:
            provenance = load_scenario_source(path)["provenance"]
            suggestion_ids += provenance["suggestion_ids"]
            outcome_ids += provenance["outcome_ids"]
            booking_ids += [b.id for b in load_scenario(path).bookings]
        assert (
            len(suggestion_ids) == len(set(suggestion_ids)) == count_rows(database_url, suggestions)
        )
        assert len(outcome_ids) == len(set(outcome_ids)) == count_rows(database_url, outcomes)
        assert len(outcome_ids) == round(served)
        assert len(booking_ids) == len(set(booking_ids))
        for day, path in zip(DAYS, files, strict=True):
            # Every booking sent is in its day, also one that only waited through rounds that
            # assigned nothing (each such round logs its state once) and was then cancelled.
            assert {b.id for b in load_scenario(path).bookings} == replayed[day].shown
            assert replayed[day].shown == {b.id for b in week[day].bookings}

        # Retrain on the first week only (collected on its own), gate on the five days after.
        assert collect(database_url, tmp_path / "first_week", DAYS[TRAINING_DAYS - 1]) == 0
        run = tmp_path / "run"
        trained = main(
            [
                "train",
                "--agent",
                "pairwise",
                "--scenarios",
                str(tmp_path / "first_week"),
                "--days",
                "4",
                "--eval-every",
                "2",
                "--no-progress",
                "--out",
                str(run),
            ]
        )
        assert trained == 0
        challenger = models / "challenger.safetensors"
        challenger.write_bytes((run / "best_model.safetensors").read_bytes())
        before = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
        assert (
            promote(database_url, server, tmp_path / "days", challenger, tmp_path / "a.json") == 0
        )
        decision = json.loads((tmp_path / "a.json").read_text())
        assert decision["decision"] == "promoted"
        assert decision["ci95"][0] > 0
        after = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
        new_version = load_learned_model(challenger).version
        assert after["model"]["version"] == new_version != before["model"]["version"]
        assert after["worker_pid"] == before["worker_pid"]

        # The old model against the new champion: refused, with the figures.
        capsys.readouterr()
        assert promote(database_url, server, tmp_path / "days", champion, tmp_path / "b.json") == 1
        refused = json.loads((tmp_path / "b.json").read_text())
        assert refused["decision"] == "refused" and refused["ci95"][1] < 0
        assert "refused" in capsys.readouterr().out

        # A day after the promotion: the metrics split the outcomes by model version.
        later = {AFTER_PROMOTION: small_day(200, AFTER_PROMOTION)}
        replay_days_through(
            server.url,
            READ_TOKEN,
            later,
            load_learned_model(challenger).policy,
            config,
            day_start,
        )
        metrics = httpx.get(f"{server.url}/rl/metrics", headers=auth(), timeout=30).json()
    by_version = {item["model_version"]: item for item in metrics["ab"]["rl_by_model_version"]}
    assert by_version[champion_model.version]["outcomes"] == len(outcome_ids)
    assert by_version[new_version]["outcomes"] > 0
