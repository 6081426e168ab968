"""The toggle survives a restart; every suggestion of a run is in the database afterwards.

The servers run in this process (see ``ThreadedServer``); a restart is a new app on the same
data folder and database. ``test_http.py`` covers the ``rldispatch serve`` process itself,
including its graceful stop on SIGTERM.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from rldispatch.service.log.store import suggestions
from tests.service.helpers import ADMIN_TOKEN, ThreadedServer, auth, suggest_body

RUN_SUGGESTIONS = 25


def run_and_restart(data_dir: Path, model: Path, database_url: str | None) -> list[str]:
    """Toggle, suggest, stop; start again and check the toggle. Returns the logged ids."""
    sent = []
    server = ThreadedServer(data_dir, model=model, database_url=database_url)
    with server, httpx.Client(base_url=server.url, timeout=30.0) as client:
        toggled = client.post(
            "/rl/toggle",
            json={"enabled": True, "ab_ratio": 0.3, "shadow": False},
            headers=auth(ADMIN_TOKEN),
        )
        assert toggled.status_code == 200
        for index in range(RUN_SUGGESTIONS):
            booking_id = f"run-{index}"
            body = suggest_body(booking_id=booking_id, seed=index)
            response = client.post("/rl/suggest", json=body, headers=auth())
            assert response.status_code == 200
            sent.append(booking_id)
    with ThreadedServer(data_dir, model=model, database_url=database_url) as server:
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30.0).json()
    assert (status["enabled"], status["ab_ratio"], status["shadow"]) == (True, 0.3, False)
    assert status["state_updated_by"] == "env-admin-1"
    return sent


def logged_booking_ids(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(suggestions.c.booking_id, suggestions.c.response).order_by(suggestions.c.id)
        ).all()
    engine.dispose()
    assert all(row.response["booking_id"] == row.booking_id for row in rows)
    return [row.booking_id for row in rows]


def test_toggle_survives_a_restart_on_sqlite(tmp_path: Path, model_path: Path) -> None:
    sent = run_and_restart(tmp_path, model_path, database_url=None)
    assert logged_booking_ids(f"sqlite:///{tmp_path / 'service.sqlite3'}") == sent


@pytest.mark.postgres
def test_toggle_survives_a_restart_on_postgres(
    tmp_path: Path, model_path: Path, postgres_schema_url: str
) -> None:
    sent = run_and_restart(tmp_path, model_path, database_url=postgres_schema_url)
    assert logged_booking_ids(postgres_schema_url) == sent
