"""The service under abuse: broken model files, a database that goes away, floods of records,
absurd outcomes, passwords in URLs, file modes, unreadable bodies."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.log.store import Store
from tests.service.helpers import (
    ADMIN_TOKEN,
    ServerProcess,
    ThreadedServer,
    auth,
    live_request,
    make_model_file,
    suggest_body,
)
from tests.service.test_store import suggestion

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


# --- broken model files ------------------------------------------------------------------------


def safetensors_bytes(header: bytes | str, payload: bytes = b"") -> bytes:
    header = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(header)) + header + payload


def nested_header(_model: Path) -> bytes:
    return safetensors_bytes("[" * 100_000 + "]" * 100_000)


def nested_metadata(_model: Path) -> bytes:
    return safetensors_bytes('{"__metadata__": ' + "{" * 50_000 + "}" * 50_000 + "}")


def metadata_list(_model: Path) -> bytes:
    return safetensors_bytes('{"__metadata__": ["format", "rldispatch-dqn"]}')


def metadata_string(_model: Path) -> bytes:
    return safetensors_bytes('{"__metadata__": "rldispatch-dqn"}')


def metadata_of_numbers(_model: Path) -> bytes:
    return safetensors_bytes('{"__metadata__": {"format": 1, "format_version": [1]}}')


def huge_integer(_model: Path) -> bytes:
    return safetensors_bytes('{"__metadata__": {"format": "x"}, "n": ' + "9" * 10_000 + "}")


def header_size_beyond_the_file(_model: Path) -> bytes:
    return struct.pack("<Q", 2**63) + b"{}"


def truncated(model: Path) -> bytes:
    return model.read_bytes()[: model.stat().st_size // 2]


def metadata_of_wrong_types(model: Path) -> bytes:
    data = model.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    inner = json.loads(header["__metadata__"]["metadata"])
    inner.update(observation_size="many", env_config=[1, 2], hyperparameters="big")
    header["__metadata__"]["metadata"] = json.dumps(inner)
    return safetensors_bytes(json.dumps(header), data[8 + size :])


def metadata_of_a_huge_network(model: Path) -> bytes:
    """The file's small weights under a header describing 100,000-wide layers (40 GB)."""
    data = model.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    inner = json.loads(header["__metadata__"]["metadata"])
    inner["hyperparameters"]["hidden_sizes"] = [100_000, 100_000]
    header["__metadata__"]["metadata"] = json.dumps(inner)
    return safetensors_bytes(json.dumps(header), data[8 + size :])


BROKEN_FILES: dict[str, Callable[[Path], bytes]] = {
    "metadata of a huge network": metadata_of_a_huge_network,
    "nested header": nested_header,
    "nested __metadata__": nested_metadata,
    "__metadata__ a list": metadata_list,
    "__metadata__ a string": metadata_string,
    "__metadata__ of numbers": metadata_of_numbers,
    "an integer of 10,000 digits": huge_integer,
    "header size beyond the file": header_size_beyond_the_file,
    "truncated": truncated,
    "metadata of the wrong types": metadata_of_wrong_types,
}


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_a_broken_model_file_is_a_fallback_with_a_reason(
    kind: str, model_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(BROKEN_FILES[kind](model_path))
    manager = RLDispatchManager(path, state=RL_ON)
    assert manager.model is None
    assert str(path) in manager.model_error
    suggestion = manager.suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_load_failed")
    assert suggestion.driver_id is not None


def test_a_model_with_nan_weights_is_a_fallback_with_a_reason(tmp_path: Path) -> None:
    import struct

    path = make_model_file(tmp_path / "nan.safetensors")
    data = bytearray(path.read_bytes())  # weights turned NaN on disk (save refuses NaN)
    payload = 8 + struct.unpack("<Q", data[:8])[0]
    data[payload:] = struct.pack("<f", float("nan")) * ((len(data) - payload) // 4)
    path.write_bytes(bytes(data))
    manager = RLDispatchManager(path, state=RL_ON)
    assert manager.model is None and "NaN or infinite values" in manager.model_error
    assert manager.suggest(live_request()).reason == "model_load_failed"


def test_serve_starts_with_a_nested_header_model_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "nested.safetensors"
    path.write_bytes(nested_header(path))
    with ServerProcess(tmp_path, model=path) as server:
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
    assert status["model"]["loaded"] is False
    assert "nested too deep" in status["model"]["error"]


# --- the write buffer and the writer -----------------------------------------------------------


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[str]:
    """A SQLite database another process holds the write lock of."""
    path = tmp_path / "locked.sqlite3"
    url = f"sqlite:///{path}?timeout=0.01"
    Store(url).start()  # creates the tables
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    yield url
    connection.close()


def big_suggestion(booking_id: str, pad_bytes: int) -> object:
    record = suggestion(booking_id)
    return type(record)(**{**record.__dict__, "request": {"pad": "x" * pad_bytes}})


def test_the_outage_buffer_is_capped_in_bytes_and_counts_the_overflow(
    locked_sqlite: str, caplog: pytest.LogCaptureFixture
) -> None:
    cap = 200_000
    store = Store(locked_sqlite, max_pending_bytes=cap, retry_initial_s=5.0, retry_max_s=5.0)
    store.start()
    caplog.set_level(logging.ERROR, logger="rldispatch.service.store")
    for index in range(60):
        store.record_suggestion(big_suggestion(f"b{index}", 20_000))
    counts = store.counts()
    store.close(timeout_s=0.1)
    assert counts["pending_bytes"] <= cap
    assert counts["pending"] < 10  # 60 records of ~20 kB each do not fit in 200 kB
    assert counts["overflow"] == counts["lost"] == 60 - counts["pending"]
    assert "write buffer full" in caplog.text and "200000 bytes" in caplog.text


def test_the_writer_backoff_holds_under_50_records_a_second() -> None:
    interval_s, duration_s = 0.5, 3.0
    store = Store(UNREACHABLE, retry_initial_s=interval_s, retry_max_s=interval_s)
    connects: list[float] = []
    event.listen(store.engine, "do_connect", lambda *args: connects.append(time.monotonic()))
    store.start()
    started = time.monotonic()
    index = 0
    while time.monotonic() - started < duration_s:
        store.record_suggestion(suggestion(f"b{index}"))
        index += 1
        time.sleep(0.02)
    store.close(timeout_s=0.1)
    assert index >= 100
    # At start (schema) and then at most one write attempt per backoff interval.
    assert len(connects) <= 2 + duration_s / interval_s, len(connects)
    gaps = [b - a for a, b in zip(connects[1:], connects[2:], strict=False)]
    assert all(gap >= interval_s * 0.9 for gap in gaps), gaps


def test_a_stopped_database_sees_few_connection_attempts_under_50_requests_a_second(
    tmp_path: Path,
) -> None:
    """The whole server (writer and switch watcher) against a dead database, under load:
    attempts back off (0.2 s doubling to 5 s each), whatever the traffic."""
    duration_s = 4.0
    with ThreadedServer(tmp_path, database_url=UNREACHABLE) as server:
        store = server.app.state.service.store
        connects: list[float] = []
        event.listen(store.engine, "do_connect", lambda *args: connects.append(time.monotonic()))
        started = time.monotonic()
        sent = 0
        with httpx.Client(base_url=server.url, headers=auth(), timeout=30) as client:
            while time.monotonic() - started < duration_s:
                assert client.post("/rl/suggest", json=suggest_body(f"x{sent}")).status_code == 200
                sent += 1
                time.sleep(max(0.0, started + sent / 50 - time.monotonic()))
    assert sent >= 150
    # Writer: 0.2 + 0.4 + 0.8 + 1.6 s; watcher: 0.5 + 1 + 2 s: at most 5 + 3 attempts in 4 s.
    assert len(connects) <= 8, len(connects)


# --- outcomes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[ThreadedServer]:
    data = tmp_path_factory.mktemp("hardening") / "data"
    with ThreadedServer(data, model=model_path) as server:
        yield server


def outcome_body(booking_id: str, requested_at: datetime, delay_min: float = 3.0) -> dict:
    return {
        "booking_id": booking_id,
        "driver_id": "d1",
        "requested_pickup_at": requested_at.isoformat(),
        "picked_up_at": (requested_at + timedelta(minutes=delay_min)).isoformat(),
        "distance_km": 4.0,
    }


def test_one_outcome_per_booking_and_only_for_suggested_ones(server: ThreadedServer) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with httpx.Client(base_url=server.url, headers=auth(), timeout=30) as client:
        unknown = client.post("/rl/outcome", json=outcome_body("never-asked", an_hour_ago))
        assert unknown.status_code == 404 and "never suggested" in unknown.json()["detail"]
        assert client.post("/rl/suggest", json=suggest_body("once")).status_code == 200
        first = client.post("/rl/outcome", json=outcome_body("once", an_hour_ago))
        assert first.status_code == 202
        for _ in range(3):
            again = client.post("/rl/outcome", json=outcome_body("once", an_hour_ago, 50.0))
            assert again.status_code == 409 and "already" in again.json()["detail"]


@pytest.mark.parametrize(
    ("field", "when", "words"),
    [
        ("requested_pickup_at", "0001-01-01T00:00:00+00:00", "within the last 31 days"),
        ("picked_up_at", "9999-12-31T00:00:00+00:00", "not in the future"),
        ("picked_up_at", "two days after", "more than a day away"),
    ],
)
def test_absurd_outcome_times_are_refused(
    server: ThreadedServer, field: str, when: str, words: str
) -> None:
    requested = datetime.now(UTC) - timedelta(days=3)
    body = outcome_body("absurd", requested)
    body[field] = (requested + timedelta(days=2)).isoformat() if when == "two days after" else when
    response = httpx.post(f"{server.url}/rl/outcome", json=body, headers=auth(), timeout=30)
    assert response.status_code == 422
    assert words in response.json()["message"]


def test_a_body_that_is_not_json_is_answered_400(server: ThreadedServer) -> None:
    for content in (b"not json", b"\xff\xfe\x00garbage", b'{"booking": '):
        response = httpx.post(
            f"{server.url}/rl/suggest",
            content=content,
            headers={**auth(), "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, response.text
        assert "not readable JSON" in response.json()["detail"]


# --- secrets and file modes --------------------------------------------------------------------


def test_database_passwords_are_masked_in_status_metrics_and_logs(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres:userinfo-secret@127.0.0.1:1/x?password=query-secret"
    with (
        ServerProcess(tmp_path, database_url=url) as server,
        httpx.Client(base_url=server.url, headers=auth(), timeout=30) as client,
    ):
        client.post("/rl/suggest", json=suggest_body())
        texts = [
            client.get("/rl/status").text,
            client.get("/rl/metrics").text,
            client.get("/metrics").text,
            client.post("/rl/toggle", json={"enabled": True}, headers=auth(ADMIN_TOKEN)).text,
        ]
        status = client.get("/rl/status").json()
    texts.append(server.log())
    assert status["database"]["url"] == (
        "postgresql+psycopg://postgres:***@127.0.0.1:1/x?password=***"
    )
    for text in texts:
        assert "userinfo-secret" not in text and "query-secret" not in text


def test_a_malformed_database_url_is_refused_without_its_password(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from rldispatch.cli import main; sys.exit(main())",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--database-url",
            "postgresql://bob:pass-secret@host:notaport/x",
        ],
        capture_output=True,
        text=True,
        env={
            "RLDISPATCH_TOKENS": "read-token-0123456789abcdef",
            "PATH": "/usr/bin",
            "PYTHONPATH": ":".join(sys.path),
        },
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "database-url" in result.stderr and "pass-secret" not in result.stderr


def test_the_data_folder_is_0700_and_the_sqlite_file_0600(server: ThreadedServer) -> None:
    data = Path(server.app.state.service.store.url.removeprefix("sqlite:///")).parent
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("service.sqlite3", "service.sqlite3-wal", "service.sqlite3-shm"):
        path = data / name
        if path.exists() or name == "service.sqlite3":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def test_an_existing_world_readable_data_folder_is_closed(tmp_path: Path) -> None:
    data = tmp_path / "open"
    data.mkdir(mode=0o755)
    (data / "service.sqlite3").touch(mode=0o644)
    with ThreadedServer(data):
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "service.sqlite3").stat().st_mode) == 0o600


def test_concurrent_suggestions_keep_answering_while_the_buffer_overflows(
    tmp_path: Path,
) -> None:
    """Many records against a locked database: suggestions answer, the buffer stays capped."""
    path = tmp_path / "data" / "service.sqlite3"
    with ThreadedServer(tmp_path / "data") as server:
        server.app.state.service.store.max_pending_bytes = 100_000
        connection = sqlite3.connect(path, isolation_level=None, timeout=5)
        connection.execute("BEGIN EXCLUSIVE")
        errors: list[int] = []

        def client_loop(offset: int) -> None:
            with httpx.Client(base_url=server.url, headers=auth(), timeout=30) as client:
                for index in range(25):
                    body = suggest_body(f"flood-{offset}-{index}", n_drivers=20, n_open=20)
                    status = client.post("/rl/suggest", json=body).status_code
                    if status != 200:
                        errors.append(status)

        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = server.app.state.service.store.counts()
        connection.close()
    assert errors == []
    assert counts["pending_bytes"] <= 100_000 and counts["overflow"] > 0


@pytest.mark.parametrize("path", ["models/a\x00b.safetensors", "\x00", "ok.safetensors\x00.onnx"])
def test_a_model_path_with_a_null_byte_is_refused_by_name(
    server: ThreadedServer, path: str
) -> None:
    response = httpx.put(
        f"{server.url}/rl/models/champion",
        json={"path": path},
        headers=auth(ADMIN_TOKEN),
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json()["message"] == "path: must not contain a null byte"
