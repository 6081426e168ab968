"""Schemathesis against the live app's own OpenAPI schema: no 5xx, no answer off-schema.

Every operation of ``/openapi.json`` gets up to ``MAX_EXAMPLES`` generated requests, valid
(positive) and invalid (negative), sent with an admin token to the real server. Valid requests
must be accepted and invalid ones refused, so the schema must state every rule the server
enforces. The rules JSON Schema cannot state (one field against another, a time against now, a
file on the server's disk) are in the schema's descriptions; :func:`keep_documented_rules`
applies them to positive cases, as a client reading the descriptions would. (The
``schemathesis.pytest.from_fixture`` loader does not run under pytest 9, so the test drives
each operation's Hypothesis strategy itself.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from rldispatch.domain import MAX_BREAKS
from rldispatch.service.http.fleet_schemas import (
    BOOKING_FIELDS,
    BREAK_FIELDS,
    MAX_STOPS_PER_DRIVER,
)
from tests.service.helpers import ADMIN_TOKEN, ThreadedServer, auth

MAX_EXAMPLES = int(os.environ.get("RLDISPATCH_SCHEMATHESIS_EXAMPLES", "50"))
"""Examples per operation and mode: 50 in CI; set the variable higher for a deeper run."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
OPERATIONS = {
    "GET /healthz",
    "GET /metrics",
    "GET /rl/metrics",
    "GET /rl/status",
    "GET /ui/state",
    "GET /rl/models",
    "PUT /rl/models/champion",
    "PUT /rl/models/challenger",
    "DELETE /rl/models/challenger",
    "POST /rl/outcome",
    "POST /rl/round",
    "POST /rl/suggest",
    "POST /rl/toggle",
}
NOTHING_TO_NEGATE = {"GET /healthz"}  # no parameters, no body, no token: no invalid request


def _keep_window_in_order(booking: Any) -> None:
    if isinstance(booking, dict) and {"window_opens_in_min", "window_closes_in_min"} <= set(
        booking
    ):
        opens, closes = booking["window_opens_in_min"], booking["window_closes_in_min"]
        booking["window_opens_in_min"], booking["window_closes_in_min"] = (
            min(opens, max(closes, 0.0)),
            max(closes, opens, 0.0),
        )


def _keep_shift_in_order(driver: dict[str, Any]) -> None:
    if "shift_ends_in_min" not in driver:
        return
    starts = driver.get("shift_starts_in_min")
    starts = 0.0 if starts is None else starts
    if driver["shift_ends_in_min"] <= starts:
        driver["shift_starts_in_min"] = 0.0
        driver["shift_ends_in_min"] = max(driver["shift_ends_in_min"], 1.0)


def _keep_places(value: Any) -> None:
    """Places by kind hold at least one place."""
    if isinstance(value, dict) and sum(v for v in value.values() if isinstance(v, int)) < 1:
        value["seated"] = 1


def _keep_break(stop: dict[str, Any]) -> dict[str, Any]:
    for key in BOOKING_FIELDS:
        stop.pop(key, None)
    stop["earliest_in_min"] = stop.get("earliest_in_min") or 0.0
    stop["latest_in_min"] = max(stop.get("latest_in_min") or 0.0, stop["earliest_in_min"])
    stop["duration_min"] = stop.get("duration_min") or 30.0
    return stop


def _keep_plan_in_order(driver: dict[str, Any], name: str) -> None:
    """The plan's drop-offs without a pickup first (without a ride limit), then each pickup
    (with its times, the window in order) followed by its own drop-off, then the breaks;
    every booking id unique in the request."""
    stops = [stop for stop in driver.get("plan") or [] if isinstance(stop, dict)]
    if not stops:
        return
    for stop in stops:
        _keep_places(stop.get("load"))
        if stop.get("kind") != "break":
            for key in BREAK_FIELDS:
                stop.pop(key, None)
            stop["booking_id"] = stop.get("booking_id") or "x"
            stop["location"] = stop.get("location") or {"lat": 46.2, "lon": 6.14}
    on_board = [stop for stop in stops if stop.get("kind") == "dropoff"]
    pickups = [stop for stop in stops if stop.get("kind") == "pickup"]
    breaks = [_keep_break(stop) for stop in stops if stop.get("kind") == "break"][:MAX_BREAKS]
    plan = []
    for index, stop in enumerate(on_board):
        stop["booking_id"] = f"{stop['booking_id'][:40]}-{name}-d{index}"
        stop.pop("max_ride_min", None)
        stop.pop("picked_up_in_min", None)
        plan.append(stop)
    room = MAX_STOPS_PER_DRIVER - len(plan) - len(breaks)
    for index, pickup in enumerate(pickups[: max(room, 0) // 2]):
        pickup["booking_id"] = f"{pickup['booking_id'][:40]}-{name}-p{index}"
        for key in ("requested_in_min", "window_opens_in_min", "window_closes_in_min"):
            if pickup.get(key) is None:
                pickup[key] = 10.0
        pickup.pop("done_in_min", None)
        pickup.pop("picked_up_in_min", None)
        _keep_window_in_order(pickup)
        dropoff = {"kind": "dropoff", "booking_id": pickup["booking_id"]}
        plan += [pickup, {**dropoff, "location": pickup["location"]}]
    driver["plan"] = plan + breaks[: MAX_STOPS_PER_DRIVER - len(plan)]


def _plans_of_stops(body: dict[str, Any]) -> bool:
    """The request's plans are plans of stops (see the stop's description)."""
    stops = [
        stop
        for driver in body.get("drivers") or []
        if isinstance(driver, dict)
        for stop in driver.get("plan") or []
    ]
    bookings = [body.get("booking"), *(body.get("open_bookings") or [])]
    return (
        body.get("shared_rides") is not None
        or any(stop.get("kind") == "break" or stop.get("max_ride_min") for stop in stops)
        or any(isinstance(b, dict) and b.get("max_ride_min") is not None for b in bookings)
    )


def _keep_stops(driver: dict[str, Any], shared_rides: bool) -> None:
    """A plan of stops: no done_in_min; one passenger on board at most without sharing."""
    plan = driver.get("plan") or []
    for stop in plan:
        stop.pop("done_in_min", None)
    if not shared_rides:
        picked = {s["booking_id"] for s in plan if s.get("kind") == "pickup"}
        on_board = [s for s in plan if s.get("kind") == "dropoff" and s["booking_id"] not in picked]
        driver["plan"] = [s for s in plan if all(s is not extra for extra in on_board[1:])]


def _keep_fleet_rules(body: dict[str, Any]) -> None:
    """The rules of a fleet request (``/rl/suggest``, ``/rl/round``) stated in words."""
    for booking in [body.get("booking"), *(body.get("open_bookings") or [])]:
        _keep_window_in_order(booking)
        if isinstance(booking, dict):
            _keep_places(booking.get("load"))
    if isinstance(body.get("booking"), dict) and "id" in body["booking"]:
        body["booking"]["id"] = f"{body['booking']['id'][:50]}-b"
    for items, tag in ((body.get("drivers"), "d"), (body.get("open_bookings"), "o")):
        for index, item in enumerate(items or []):
            if isinstance(item, dict) and "id" in item:
                item["id"] = f"{item['id'][:50]}-{tag}{index}"  # ids unique
    for index, driver in enumerate(body.get("drivers") or []):
        if isinstance(driver, dict):
            _keep_places(driver.get("capacity"))
            _keep_shift_in_order(driver)
            _keep_plan_in_order(driver, f"v{index}")
    if _plans_of_stops(body):
        for driver in body.get("drivers") or []:
            if isinstance(driver, dict):
                _keep_stops(driver, body.get("shared_rides") is True)


def keep_documented_rules(case: schemathesis.Case, model_path: Path) -> schemathesis.Case:
    """A positive case made to follow the rules the schema states in words."""
    body = case.body
    if not isinstance(body, dict):
        return case
    name = f"{case.method.upper()} {case.path}"
    if name in ("POST /rl/suggest", "POST /rl/round"):
        _keep_fleet_rules(body)
    elif name == "POST /rl/outcome":
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        body["requested_pickup_at"] = an_hour_ago.isoformat()
        body["picked_up_at"] = (an_hour_ago + timedelta(minutes=4)).isoformat()
    elif name in ("PUT /rl/models/champion", "PUT /rl/models/challenger"):
        body["path"] = str(model_path)
    return case


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path
) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("schemathesis"), model=model_path) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_within_its_schema(
    api_server: ThreadedServer, model_path: Path, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == OPERATIONS
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        if mode is GenerationMode.NEGATIVE and name in NOTHING_TO_NEGATE:
            continue

        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = strategy.map(lambda case: keep_documented_rules(case, model_path))

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=api_server.url, headers=auth(ADMIN_TOKEN), checks=CHECKS, timeout=30
            )

        check()
