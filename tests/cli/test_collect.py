"""``rldispatch collect``."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.cli import main
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.history import HistoryBooking, write_synthetic_history
from tests.feedback.test_service_log import (
    DAY_A,
    DAY_B,
    SMALL_DAY,
    after_today,
    build_log,
    log_for_the_archive,
    play_rounds,
    pruned_to,
    service_app,
)
from tests.scenarios.history.kinds_day import write_kinds_csvs, write_kinds_rows
from tests.scenarios.test_history import export_csv

DAYS = [date(2025, 10, 20), date(2025, 10, 21), date(2025, 10, 22)]


@pytest.fixture
def history_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = create_engine(url)
    write_synthetic_history(engine, DAYS, seed=3)
    engine.dispose()
    return url


def collect_db(url: str, out, *extra: str) -> int:
    return main(
        ["collect", "--db", url, "--since", "2025-10-20", "--until", "2025-10-22"]
        + ["--out", str(out), *extra]
    )


def test_collect_writes_one_scenario_file_per_day_and_a_summary(history_url, tmp_path, capsys):
    out, summary_path = tmp_path / "days", tmp_path / "summary.json"

    code = collect_db(history_url, out, "--json", str(summary_path))

    assert code == 0
    names = sorted(path.name for path in out.iterdir())
    assert names == ["2025-10-20.json", "2025-10-21.json", "2025-10-22.json"]
    assert load_scenario(out / "2025-10-21.json").name == "history-2025-10-21"
    printed = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("wrote ") for line in printed) == 3
    summary = json.loads(summary_path.read_text())
    assert [day["day"] for day in summary["days"]] == [day.isoformat() for day in DAYS]
    assert summary["days"][0]["path"] == str(out / "2025-10-20.json")
    assert summary["skipped"] == []


def test_a_skipped_day_is_printed_with_its_reason(history_url, tmp_path, capsys):
    engine = create_engine(history_url)
    with Session(engine) as session, session.begin():
        session.execute(
            update(HistoryBooking)
            .where(HistoryBooking.id == "2025-10-21-b4")
            .values(pickup_lat=None)
        )
    engine.dispose()

    code = collect_db(history_url, tmp_path / "days")

    assert code == 0
    assert not (tmp_path / "days" / "2025-10-21.json").exists()
    printed = capsys.readouterr().out
    assert "skipped 2025-10-21: 1 malformed row: booking '2025-10-21-b4': pickup_lat" in printed


def test_a_bad_since_date_exits_with_code_2(history_url, tmp_path, capsys):
    code = main(
        ["collect", "--db", history_url, "--since", "20-10-2025", "--until", "2025-10-22"]
        + ["--out", str(tmp_path / "days")]
    )

    assert code == 2
    assert "--since" in capsys.readouterr().err
    assert not (tmp_path / "days").exists()


def test_the_database_password_is_never_printed(tmp_path, capsys):
    url = "postgresql+psycopg://dispatch:s3cret-pw@127.0.0.1:1/company"

    code = collect_db(url, tmp_path / "days", "--json", str(tmp_path / "summary.json"))

    assert code == 2
    printed = capsys.readouterr()
    assert "s3cret-pw" not in printed.out + printed.err
    assert "dispatch:***@127.0.0.1:1/company" in printed.err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://rl:s3cret-pw@db:five/rl", "is not a database URL"),
        ("postgresql+psycopg://rl:s3cret-pw@db:70000/rl", "the port must be 1 to 65535"),
        ("nosuchdialect://rl:s3cret-pw@db/rl", "is not a usable database URL"),
    ],
)
def test_a_service_database_url_is_checked_before_connecting(url, message, tmp_path, capsys):
    code = main(
        ["collect", "--service-db", url, "--since", "2025-10-20", "--until", "2025-10-21"]
        + ["--out", str(tmp_path / "days")]
    )
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rldispatch collect: error: --service-db: ")
    assert message in lines[0] and "s3cret-pw" not in lines[0]


def test_collect_from_csv_files(history_url, tmp_path):
    engine = create_engine(history_url)
    export_csv(engine, tmp_path / "bookings.csv", tmp_path / "shifts.csv")
    engine.dispose()
    out = tmp_path / "days"

    code = main(
        ["collect", "--csv", str(tmp_path / "bookings.csv")]
        + ["--shifts-csv", str(tmp_path / "shifts.csv"), "--out", str(out)]
    )

    assert code == 0
    assert len(list(out.glob("*.json"))) == 3


def test_csv_without_shifts_csv_exits_with_code_2(tmp_path):
    code = main(["collect", "--csv", str(tmp_path / "b.csv"), "--out", str(tmp_path / "days")])

    assert code == 2


def test_db_without_dates_exits_with_code_2(history_url, tmp_path):
    code = main(["collect", "--db", history_url, "--out", str(tmp_path / "days")])

    assert code == 2


def test_no_day_in_range_exits_with_code_1(history_url, tmp_path):
    code = main(
        ["collect", "--db", history_url, "--since", "2024-01-01", "--until", "2024-01-02"]
        + ["--out", str(tmp_path / "days")]
    )

    assert code == 1


@pytest.fixture(scope="module")
def service_log(tmp_path_factory) -> tuple[str, dict[str, int]]:
    folder = tmp_path_factory.mktemp("service_log_cli")
    url = f"sqlite:///{folder / 'service.sqlite3'}"
    _, malformed = build_log(url, folder / "data")
    return url, malformed


def collect_service(url: str | None, out, *extra: str) -> int:
    source = ["--service-db", url] if url else []
    return main(
        ["collect", *source, "--since", DAY_A.isoformat(), "--until", SMALL_DAY.isoformat()]
        + ["--timezone", "UTC", "--out", str(out), *extra]
    )


def test_collect_from_the_service_log_reports_each_day_and_each_skipped_row(
    service_log, tmp_path, capsys
):
    url, malformed = service_log
    out, summary_path = tmp_path / "days", tmp_path / "summary.json"

    code = collect_service(url, out, "--json", str(summary_path))

    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{DAY_A}.json", f"{DAY_B}.json"]
    printed = capsys.readouterr().out
    assert f"wrote {out / f'{DAY_A}.json'}: " in printed
    assert "suggestions 15 read, 12 used, 3 skipped; outcomes 8 read, 8 matched" in printed
    assert f"skipped {SMALL_DAY}: 2 bookings, fewer than the 5" in printed
    assert f"skipped row: rl_suggestions row {malformed['invalid']}: request does not" in printed
    assert f"skipped row: rl_outcomes row {malformed['unmatched_outcome']}: booking" in printed
    summary = json.loads(summary_path.read_text())
    assert summary["source"] == url
    assert summary["totals"]["suggestions_skipped"] == 3
    assert len(summary["skipped_rows"]) == 4
    assert summary["skipped"][0]["suggestion_ids"]
    assert summary["days"][0]["counts"]["outcomes_matched"] == 8


def test_collecting_the_service_log_twice_writes_the_same_bytes(service_log, tmp_path):
    url, _ = service_log
    assert collect_service(url, tmp_path / "first") == 0
    assert collect_service(url, tmp_path / "second") == 0

    first = sorted((tmp_path / "first").iterdir())
    second = sorted((tmp_path / "second").iterdir())

    assert [p.name for p in first] == [p.name for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_collected_service_days_play_in_simulate_and_train(service_log, tmp_path, capsys):
    url, _ = service_log
    days = tmp_path / "days"
    assert collect_service(url, days, "--min-bookings", "1") == 0  # 3 days: 2 train, 1 held out
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"hidden": 16, "head_hidden": 16, "batch_size": 8, "learning_starts": 10}
            | {"buffer_size": 500}
        )
    )

    played = main(
        ["simulate", "--scenario", str(days / f"{DAY_A}.json"), "--policy", "insertion"]
        + ["--json", str(tmp_path / "report.json")]
    )
    trained = main(
        ["train", "--agent", "pairwise", "--scenarios", str(days), "--config", str(config)]
        + ["--days", "2", "--eval-every", "2", "--eval-days", "1", "--no-progress"]
        + ["--out", str(tmp_path / "run"), "--json", str(tmp_path / "train.json")]
    )

    assert played == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["policies"]["insertion"]["completion_rate"]["mean"] > 0
    assert trained == 0
    assert json.loads((tmp_path / "train.json").read_text())["days"] == 2
    # The model file says which dates it trained on and which selected it, so promote can
    # refuse it on any of them (the latest date is held out).
    model = load_pairwise_model(tmp_path / "run" / "best_model.safetensors")
    summary = model.metadata.training_summary
    names = [load_scenario(path).name for path in sorted(days.glob("*.json"))]
    assert summary["training_days"] == names[:1]
    assert summary["selection_days"] == names[1:2]


def test_the_service_database_may_come_from_its_environment_variable(
    service_log, tmp_path, monkeypatch
):
    url, _ = service_log
    monkeypatch.delenv("RLDISPATCH_HISTORY_DB", raising=False)
    monkeypatch.setenv("RLDISPATCH_SERVICE_DB", url)

    code = collect_service(None, tmp_path / "days")

    assert code == 0
    assert len(list((tmp_path / "days").glob("*.json"))) == 2


def test_the_service_database_password_is_never_printed(tmp_path, capsys):
    url = "postgresql+psycopg://rl:s3cret-pw@127.0.0.1:1/rldispatch"

    code = collect_service(url, tmp_path / "days")

    assert code == 2
    printed = capsys.readouterr()
    assert "s3cret-pw" not in printed.out + printed.err
    assert "cannot read the service's log from postgresql+psycopg://rl:***@" in printed.err


def test_service_options_without_the_service_db_exit_with_code_2(history_url, tmp_path, capsys):
    code = collect_db(history_url, tmp_path / "days", "--min-bookings", "3")

    assert code == 2
    assert "--min-bookings goes with --service-db URL" in capsys.readouterr().err


def test_an_unknown_timezone_exits_with_code_2(service_log, tmp_path, capsys):
    url, _ = service_log

    code = main(
        ["collect", "--service-db", url, "--since", DAY_A.isoformat(), "--until"]
        + [DAY_A.isoformat(), "--timezone", "Mars/Base", "--out", str(tmp_path / "days")]
    )

    assert code == 2
    assert "timezone: unknown time zone 'Mars/Base'" in capsys.readouterr().err


def test_service_db_and_db_together_are_refused(history_url, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["collect", "--db", history_url, "--service-db", history_url]
            + ["--since", "2025-10-20", "--until", "2025-10-22", "--out", str(tmp_path)]
        )

    assert exit_info.value.code == 2


def test_collect_reads_the_archive_of_pruned_days_alone_or_with_the_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    log_for_the_archive(url, tmp_path / "data")
    assert collect_service(url, tmp_path / "before") == 0
    expected = [path.read_bytes() for path in sorted((tmp_path / "before").iterdir())]
    archive, summary_path = tmp_path / "archive", tmp_path / "summary.json"
    pruned_to(url, archive, DAY_B)
    capsys.readouterr()

    both = collect_service(
        url, tmp_path / "both", "--archive-dir", str(archive), "--json", str(summary_path)
    )
    printed = capsys.readouterr().out
    pruned_to(url, archive, after_today())
    with service_app(url, tmp_path / "data") as client:  # logged since, on the small day
        play_rounds(client, SMALL_DAY)
    after = collect_service(
        url, tmp_path / "after", "--archive-dir", str(archive), "--min-bookings", "1"
    )
    alone = collect_service(None, tmp_path / "alone", "--archive-dir", str(archive))

    assert both == after == alone == 0
    for folder in ("both", "after", "alone"):
        written = sorted((tmp_path / folder).iterdir())
        assert [path.read_bytes() for path in written[:2]] == expected
    assert len(list((tmp_path / "after").iterdir())) == 3  # the small day, new ids since
    assert f"(archive rl_suggestions-{DAY_A}.jsonl line " in printed
    assert "(2 rounds that assigned nothing)" in printed  # day B was also served in rounds
    summary = json.loads(summary_path.read_text())
    assert summary["source"] == f"{url} and archive {archive}"
    assert summary["skipped_rows"][0]["archive"].startswith(f"rl_suggestions-{DAY_A}.jsonl")


def test_the_archive_without_dates_or_with_the_history_is_refused(history_url, tmp_path, capsys):
    archive = str(tmp_path)

    no_dates = main(["collect", "--archive-dir", archive, "--out", str(tmp_path / "days")])
    with_db = collect_db(history_url, tmp_path / "days", "--archive-dir", archive)

    assert no_dates == with_db == 2
    errors = capsys.readouterr().err
    assert "--archive-dir needs --since DATE and --until DATE" in errors
    assert "--archive-dir goes with --service-db URL, or alone" in errors


def test_shared_ride_days_from_the_csv_and_the_database_play_in_simulate(tmp_path, capsys):
    bookings, shifts = write_kinds_csvs(tmp_path / "export")
    url = f"sqlite:///{tmp_path / 'kinds.db'}"
    engine = create_engine(url)
    write_kinds_rows(engine)
    engine.dispose()
    from_csv, from_db = tmp_path / "csv_days", tmp_path / "db_days"

    by_csv = main(
        ["collect", "--csv", str(bookings), "--shifts-csv", str(shifts), "--shared-rides"]
        + ["--out", str(from_csv)]
    )
    by_db = main(
        ["collect", "--db", url, "--since", "2025-10-20", "--until", "2025-10-20"]
        + ["--shared-rides", "--out", str(from_db)]
    )
    day_file = from_csv / "2025-10-20.json"
    played = main(
        ["simulate", "--scenario", str(day_file), "--policy", "insertion"]
        + ["--json", str(tmp_path / "report.json")]
    )

    assert (by_csv, by_db, played) == (0, 0, 0)
    assert day_file.read_bytes() == (from_db / "2025-10-20.json").read_bytes()
    data = json.loads(day_file.read_text())
    assert data["shared_rides"] is True
    assert data["drivers"][1]["capacity"] == {"seated": 4, "wheelchair": 1}
    assert data["drivers"][0]["breaks"] == [{"earliest": 240.0, "latest": 330.0, "duration": 30.0}]
    assert data["bookings"][1]["load"] == {"wheelchair": 1}
    assert data["bookings"][1]["max_ride_min"] == 45.0
    assert data["bookings"][0]["load"] == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["policies"]["insertion"]["completion_rate"]["mean"] > 0


def test_shared_rides_with_the_service_log_is_refused(service_log, tmp_path, capsys):
    url, _ = service_log

    code = collect_service(url, tmp_path / "days", "--shared-rides")

    assert code == 2
    assert "--shared-rides goes with --db or --csv" in capsys.readouterr().err
