"""One versioned switch row: compare-and-set, and every worker and instance following it."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.log.store import Store
from rldispatch.service.log.tables import ensure_schema
from tests.service.helpers import (
    ADMIN_TOKEN,
    PLAIN_HTTP,
    ServerProcess,
    ThreadedServer,
    auth,
    suggest_body,
)

SEEN_WITHIN_S = 1.0


def test_two_admins_changing_different_fields_at_once_lose_neither(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'switch.sqlite3'}"
    first, second = Store(url), Store(url)
    first.start()
    second.start()
    read_by_first = threading.Event()
    second_saved = threading.Event()
    calls: list[int] = []

    def enable(current: ToggleState) -> ToggleState:
        calls.append(current.version)
        read_by_first.set()
        second_saved.wait(10)  # the other admin saves between our read and our write
        return replace(current, enabled=True, updated_by="first")

    thread = threading.Thread(target=first.update_state, args=(enable,))
    thread.start()
    read_by_first.wait(10)
    second.update_state(lambda current: replace(current, ab_ratio=0.3, updated_by="second"))
    second_saved.set()
    thread.join(10)
    state = first.load_state()
    first.close()
    second.close()
    assert (state.enabled, state.ab_ratio, state.updated_by) == (True, 0.3, "first")
    assert calls == [0, 1]  # the first write lost the race, read again, kept both changes
    assert state.version == 2


def test_an_older_table_is_brought_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE rl_service_state (id INTEGER PRIMARY KEY, enabled BOOLEAN NOT NULL,"
                " ab_ratio FLOAT NOT NULL, shadow BOOLEAN NOT NULL, updated_at DATETIME NOT NULL,"
                " updated_by VARCHAR(128) NOT NULL)"
            )
        )
        connection.execute(
            text("INSERT INTO rl_service_state VALUES (1, 1, 0.4, 0, '2026-01-01 00:00:00', 'ops')")
        )
    ensure_schema(engine)
    engine.dispose()
    store = Store(url)
    store.start()
    state = store.load_state()
    saved = store.update_state(lambda current: replace(current, shadow=True))
    store.close()
    assert (state.enabled, state.ab_ratio, state.version, state.challenger_ratio) == (
        True,
        0.4,
        0,
        0.0,
    )
    assert (saved.shadow, saved.ab_ratio, saved.version) == (True, 0.4, 1)


def seen_within(client: httpx.Client, check, timeout_s: float = 5.0) -> float:
    """Seconds until ``check(status)`` holds on the server behind ``client``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check(client.get("/rl/status", headers=auth()).json()):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("the change never arrived")


def toggle_seen_by_the_other_instance(tmp_path: Path, database_url: str | None) -> None:
    """Two apps, each with its own store and switch, sharing only the database."""
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    if database_url is None:  # both instances on one SQLite file
        database_url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    with (
        ThreadedServer(data_a, database_url=database_url) as a,
        ThreadedServer(data_b, database_url=database_url) as b,
        httpx.Client(base_url=a.url, timeout=30) as client_a,
        httpx.Client(base_url=b.url, timeout=30) as client_b,
    ):
        assert client_b.get("/rl/status", headers=auth()).json()["enabled"] is False
        toggled = client_a.post(
            "/rl/toggle", json={"enabled": True, "ab_ratio": 0.8}, headers=auth(ADMIN_TOKEN)
        )
        assert toggled.status_code == 200
        elapsed = seen_within(client_b, lambda s: s["enabled"] and s["ab_ratio"] == 0.8)
        assert elapsed < SEEN_WITHIN_S
        # Two admins at once, one on each instance, each changing one field: both stay.
        with httpx.Client(timeout=30) as admin:
            threads = [
                threading.Thread(
                    target=admin.post,
                    args=(f"{server.url}/rl/toggle",),
                    kwargs={"json": body, "headers": auth(ADMIN_TOKEN)},
                )
                for server, body in ((a, {"shadow": True}), (b, {"ab_ratio": 0.2}))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for client in (client_a, client_b):
            seen_within(client, lambda s: s["shadow"] and s["ab_ratio"] == 0.2 and s["enabled"])
        answer = client_b.post("/rl/suggest", json=suggest_body(), headers=auth()).json()
        assert answer["reason"] == "shadow_mode"


def test_a_toggle_on_one_instance_reaches_another_on_sqlite(tmp_path: Path) -> None:
    toggle_seen_by_the_other_instance(tmp_path, None)


@pytest.mark.postgres
def test_a_toggle_on_one_instance_reaches_another_on_postgres(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    toggle_seen_by_the_other_instance(tmp_path, postgres_schema_url)


@pytest.mark.slow
def test_serve_with_two_workers_shares_tokens_and_the_switch_and_restarts_a_dead_worker(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path, tokens=False, extra_args=("--workers", "2")) as server:
        token = (tmp_path / "admin-token").read_text().strip()
        pids: set[int] = set()
        toggled = httpx.post(
            f"{server.url}/rl/toggle", json={"enabled": True}, headers=auth(token), timeout=30
        )
        assert toggled.status_code == 200
        time.sleep(SEEN_WITHIN_S)
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            # a new connection (PLAIN_HTTP: without building a TLS context each time)
            with httpx.Client(base_url=server.url, timeout=30, verify=PLAIN_HTTP) as client:
                status = client.get("/rl/status", headers=auth(token)).json()
            assert status["enabled"] is True
            pids.add(status["worker_pid"])
        assert len(pids) == 2
        # Keep-alive connections opened at once spread over both workers (SO_REUSEPORT).
        clients = [
            httpx.Client(base_url=server.url, timeout=30, verify=PLAIN_HTTP) for _ in range(16)
        ]
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(lambda c: c.get("/rl/status", headers=auth(token)).json(), clients)
            )
        for client in clients:
            client.close()
        assert {answer["worker_pid"] for answer in answers} == pids

        # A worker that dies is started again.
        victim = httpx.get(f"{server.url}/rl/status", headers=auth(token), timeout=30).json()
        os.kill(victim["worker_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        alive: set[int] = set()
        while time.monotonic() < deadline and len(alive - {victim["worker_pid"]}) < 2:
            try:
                with httpx.Client(base_url=server.url, timeout=30, verify=PLAIN_HTTP) as client:
                    alive.add(client.get("/rl/status", headers=auth(token)).json()["worker_pid"])
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        assert len(alive - {victim["worker_pid"]}) == 2
        assert "exited (code -9): starting another" in server.log()
    # Both first workers and the one started again shut down; the killed one never did.
    assert server.log().count("Application shutdown complete") == 2
