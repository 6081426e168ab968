"""``rldispatch collect``."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from rldispatch.cli import main
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.history import HistoryBooking, write_synthetic_history
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
