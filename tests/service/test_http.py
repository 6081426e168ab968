"""The real server over HTTP: auth, validation, fallback, A/B, metrics, outcomes."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from rldispatch.service.decisions.ab import assign_arm
from rldispatch.service.log.store import suggestions
from tests.service.helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    ServerProcess,
    auth,
    make_model_file,
    suggest_body,
)

ENDPOINTS = [
    ("POST", "/rl/suggest"),
    ("GET", "/rl/status"),
    ("POST", "/rl/toggle"),
    ("GET", "/rl/metrics"),
    ("POST", "/rl/outcome"),
    ("GET", "/metrics"),
]
REQUESTED_AT = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
OUTCOME = {
    "booking_id": "b1",
    "driver_id": "d1",
    "requested_pickup_at": REQUESTED_AT.isoformat(),
    "picked_up_at": (REQUESTED_AT + timedelta(minutes=2.5)).isoformat(),
    "distance_km": 6.5,
}


@pytest.fixture(scope="module")
def broken_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("broken")
    model = data / "model.safetensors"
    model.write_bytes(b"this is not a model file")
    with ServerProcess(data, model=model) as server:
        yield server


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("model")
    # Waiting scores low: the RL arm always answers (a random network may prefer to wait).
    model = make_model_file(
        data / "model.safetensors", tweak=lambda net: net.head.bias.__setitem__(0, -1e3)
    )
    with ServerProcess(data, model=model) as server:
        yield server


@pytest.fixture
def client(broken_model_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broken_model_server.url, timeout=30.0) as client:
        yield client


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_token(client: httpx.Client, method: str, path: str) -> None:
    for headers in ({}, auth("wrong-token-0123456789"), {"Authorization": READ_TOKEN}):
        response = client.request(method, path, json={}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["detail"]


def test_toggle_needs_an_admin_token(client: httpx.Client) -> None:
    response = client.post("/rl/toggle", json={"enabled": True}, headers=auth(READ_TOKEN))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert client.get("/rl/status", headers=auth()).json()["enabled"] is False


def test_docs_and_schema_are_public(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/rl/suggest", "/rl/status", "/rl/toggle", "/rl/metrics", "/rl/outcome"} <= set(
        schema["paths"]
    )


# --- validation ------------------------------------------------------------------------------


def post_suggest(client: httpx.Client, body: dict | str) -> httpx.Response:
    if isinstance(body, str):
        return client.post(
            "/rl/suggest",
            content=body,
            headers={**auth(), "Content-Type": "application/json"},
        )
    return client.post("/rl/suggest", json=body, headers=auth())


def assert_names_field(response: httpx.Response, loc: list, words: str) -> None:
    assert response.status_code == 422, response.text
    answer = response.json()
    assert any(item["loc"] == loc for item in answer["detail"]), answer
    assert words in answer["message"], answer["message"]
    assert "input" not in json.dumps(answer["detail"])


def test_nan_coordinate_is_refused_naming_the_field(client: httpx.Client) -> None:
    text = json.dumps(suggest_body())
    lat = json.dumps(suggest_body()["drivers"][1]["position"]["lat"])
    text = text.replace(f'"lat": {lat}', '"lat": NaN', 1)
    response = post_suggest(client, text)
    assert_names_field(response, ["body", "drivers", 1, "position", "lat"], "finite number")
    assert "drivers.1.position.lat" in response.json()["message"]


def test_latitude_91_is_refused_naming_the_field(client: httpx.Client) -> None:
    body = suggest_body()
    body["booking"]["pickup"]["lat"] = 91
    response = post_suggest(client, body)
    assert_names_field(response, ["body", "booking", "pickup", "lat"], "booking.pickup.lat")


def test_empty_driver_list_is_refused(client: httpx.Client) -> None:
    body = suggest_body()
    body["drivers"] = []
    assert_names_field(post_suggest(client, body), ["body", "drivers"], "drivers: ")


def test_duplicate_driver_ids_are_refused(client: httpx.Client) -> None:
    body = suggest_body()
    body["drivers"][3]["id"] = body["drivers"][0]["id"]
    response = post_suggest(client, body)
    assert_names_field(response, ["body", "drivers"], "drivers[3].id")
    assert "used twice" in response.json()["message"]


def test_10001_drivers_are_refused(client: httpx.Client) -> None:
    body = suggest_body(n_drivers=1)
    driver = body["drivers"][0]
    body["drivers"] = [{**driver, "id": f"d{index}"} for index in range(10_001)]
    response = post_suggest(client, body)
    assert_names_field(response, ["body", "drivers"], "at most 10000")
    assert len(response.content) < 2000


def test_window_closing_before_it_opens_is_refused(client: httpx.Client) -> None:
    body = suggest_body()
    body["booking"]["window_closes_in_min"] = body["booking"]["window_opens_in_min"] - 1
    assert_names_field(post_suggest(client, body), ["body", "booking"], "window_closes_in_min")


# --- fallback --------------------------------------------------------------------------------


def fallback_count(client: httpx.Client, reason: str) -> int:
    return client.get("/rl/metrics", headers=auth()).json()["fallbacks"].get(reason, 0)


def test_broken_model_still_answers_from_the_fallback(client: httpx.Client) -> None:
    status = client.get("/rl/status", headers=auth()).json()
    assert status["model"]["loaded"] is False
    assert "model.safetensors" in status["model"]["error"]
    toggled = client.post(
        "/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=auth(ADMIN_TOKEN)
    )
    assert toggled.status_code == 200
    before = fallback_count(client, "model_load_failed")
    for index in range(3):
        response = post_suggest(client, suggest_body(booking_id=f"broken-{index}"))
        assert response.status_code == 200
        answer = response.json()
        assert (answer["source"], answer["reason"]) == ("fallback", "model_load_failed")
        assert answer["driver_id"] == answer["candidates"][0]["driver_id"]
    assert fallback_count(client, "model_load_failed") == before + 3
    text = client.get("/metrics", headers=auth()).text
    assert f'rldispatch_fallbacks_total{{reason="model_load_failed"}} {before + 3}.0' in text


def test_no_token_reaches_the_logs(
    broken_model_server: ServerProcess, client: httpx.Client
) -> None:
    post_suggest(client, suggest_body())
    client.post("/rl/toggle", json={}, headers=auth(ADMIN_TOKEN))
    client.get("/rl/status", headers=auth("wrong-token-0123456789"))
    log = broken_model_server.log()
    assert "POST /rl/suggest" in log
    for token in (READ_TOKEN, ADMIN_TOKEN, "wrong-token-0123456789"):
        assert token not in log


# --- the model answering, A/B, outcomes --------------------------------------------------------


def test_ab_split_and_outcomes_reach_the_metrics(model_server: ServerProcess) -> None:
    with httpx.Client(base_url=model_server.url, timeout=30.0) as client:
        toggled = client.post(
            "/rl/toggle", json={"enabled": True, "ab_ratio": 0.5}, headers=auth(ADMIN_TOKEN)
        ).json()
        assert (toggled["enabled"], toggled["ab_ratio"], toggled["updated_by"]) == (
            True,
            0.5,
            "env-admin-1",
        )
        arms, lates = {}, {}
        for index in range(30):
            booking_id = f"ab-{index}"
            answer = post_suggest(client, suggest_body(booking_id=booking_id, seed=index)).json()
            arms[booking_id] = answer["arm"]
            assert answer["arm"] == assign_arm(booking_id, 0.5)
            expected = ("rl", None) if answer["arm"] == "rl" else ("fallback", "ab_heuristic_arm")
            assert (answer["source"], answer["reason"]) == expected
            lates[booking_id] = late = index % 3 == 0
            outcome = {
                **OUTCOME,
                "booking_id": booking_id,
                "picked_up_at": (REQUESTED_AT + timedelta(minutes=10)).isoformat()
                if late
                else OUTCOME["picked_up_at"],
            }
            reported = client.post("/rl/outcome", json=outcome, headers=auth())
            assert reported.status_code == 202
            assert reported.json() == {
                "booking_id": booking_id,
                "accepted": True,
                "pickup_delay_min": 10.0 if late else 2.5,
                "late": late,
            }
        deadline = time.monotonic() + 10
        while client.get("/rl/metrics", headers=auth()).json()["database"]["pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = client.get("/rl/metrics", headers=auth()).json()
        for arm in ("rl", "heuristic"):
            in_arm = [booking for booking, value in arms.items() if value == arm]
            figures = metrics["ab"]["arms"][arm]
            assert figures["suggestions"] == figures["outcomes"] == len(in_arm)
            assert figures["mean_distance_km"] == pytest.approx(6.5)
            assert figures["late_rate"] == round(  # a share, to 0.001
                sum(lates[booking] for booking in in_arm) / len(in_arm), 3
            )
        assert metrics["by_source"]["rl"] == sum(v == "rl" for v in arms.values())
        assert metrics["latency_ms"]["p99"] is not None


def test_shadow_mode_over_http(model_server: ServerProcess) -> None:
    with httpx.Client(base_url=model_server.url, timeout=30.0) as client:
        client.post(
            "/rl/toggle",
            json={"enabled": True, "ab_ratio": 1.0, "shadow": True},
            headers=auth(ADMIN_TOKEN),
        )
        answer = post_suggest(client, suggest_body(booking_id="shadow-1", n_drivers=8)).json()
        client.post("/rl/toggle", json={"shadow": False}, headers=auth(ADMIN_TOKEN))
        served = post_suggest(client, suggest_body(booking_id="shadow-1", n_drivers=8)).json()
    assert (answer["source"], answer["reason"], answer["arm"]) == ("fallback", "shadow_mode", None)
    assert answer["shadow_driver_id"] == served["driver_id"]
    assert served["source"] == "rl"


# --- no token configured, no model, no database ------------------------------------------------


def test_without_tokens_the_service_creates_an_admin_token(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, tokens=False) as server:
        path = tmp_path / "admin-token"
        token = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            assert client.get("/rl/status").status_code == 401
            status = client.get("/rl/status", headers=auth(token)).json()
            assert status["model"] == {
                "loaded": False,
                "path": None,
                "version": None,
                "kind": None,
                "runtime": None,
                "preset": None,
                "max_drivers": None,
                "visible_slots": None,
                "error": None,
            }
            toggled = client.post("/rl/toggle", json={"enabled": True}, headers=auth(token))
            assert toggled.json()["updated_by"] == "local-admin"
            for _ in range(10):
                answer = post_suggest_with(client, token)
                assert (answer["source"], answer["reason"]) == ("fallback", "model_missing")
    log = server.log()
    assert str(path) in log and token not in log
    # Stopped by SIGTERM: uvicorn shuts the app down gracefully (then re-raises the signal).
    assert "Application shutdown complete" in log
    engine = create_engine(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(suggestions)) == 10
    engine.dispose()


def post_suggest_with(client: httpx.Client, token: str) -> dict:
    response = client.post("/rl/suggest", json=suggest_body(), headers=auth(token))
    assert response.status_code == 200
    return response.json()


def test_with_the_database_down_suggestions_still_answer(tmp_path: Path) -> None:
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    server = ServerProcess(tmp_path, database_url=down)
    with server, httpx.Client(base_url=server.url, timeout=30.0) as client:
        for _ in range(5):
            answer = post_suggest_with(client, READ_TOKEN)
            assert answer["source"] == "fallback"
        refused = client.post("/rl/outcome", json=OUTCOME, headers=auth())
        assert refused.status_code == 503 and "not saved" in refused.json()["detail"]
        metrics = client.get("/rl/metrics", headers=auth()).json()
        assert metrics["database"]["available"] is False
        assert metrics["database"]["pending"] + metrics["database"]["written"] == 5
        assert metrics["database"]["written"] == 0
        assert metrics["ab"]["arms"] is None and "unavailable" in metrics["ab"]["error"]
        toggled = client.post("/rl/toggle", json={"enabled": True}, headers=auth(ADMIN_TOKEN))
        assert toggled.status_code == 503
        assert client.get("/rl/status", headers=auth()).json()["enabled"] is False
    log = server.log()
    assert "unavailable" in log and "5 decisions not written" in log
