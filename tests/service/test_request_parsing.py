"""Reading a request: from its bytes, into the same objects and the same refusals as before."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from rldispatch.domain import Booking, Places
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.decisions.answers import Candidate, RoundAssignment
from rldispatch.service.decisions.replay import state_body
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.http.fleet_schemas import (
    SHARED_RIDES_EXAMPLE,
    AssignmentOut,
    CandidateOut,
    RoundRequest,
)
from rldispatch.service.http.raw_body import parse_body
from rldispatch.service.http.schemas import BookingIn, booking_from_request


def mid_day_body() -> dict[str, Any]:
    """A state with plans of whole bookings: a geneva day played with insertion to 10:00."""
    day = LiveDay.from_preset("geneva")
    scenario = make_preset("geneva", 10_002)
    env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=30))
    env.reset(options={"scenario": scenario})
    policy = make_baseline("insertion")
    while env.sim.now_min < 240.0:
        env.step(policy.act(env))
    return state_body(env.sim, day.start_min)


@pytest.mark.parametrize("load", [1, 3, {"wheelchair": 1, "seated": 1}])
def test_a_request_booking_equals_the_one_its_constructor_makes(load: Any) -> None:
    booking = BookingIn.model_validate(
        {
            "id": "b-1",
            "pickup": {"lat": 46.2, "lon": 6.1},
            "dropoff": {"lat": 46.19, "lon": 6.15},
            "requested_in_min": 20,
            "window_opens_in_min": 10,
            "window_closes_in_min": 50,
            "service_min": 3,
            "priority": 1,
            "load": load,
            "max_ride_min": 45,
        }
    )
    made = booking_from_request(booking.id, booking.pickup, booking.dropoff, booking)
    expected = Booking(
        id="b-1",
        release_min=0.0,
        pickup=(46.2, 6.1),
        dropoff=(46.19, 6.15),
        requested_min=20.0,
        window=(10.0, 50.0),
        service_min=3.0,
        priority=1,
        load=Places.of(load) if isinstance(load, int) else Places(seated=1, wheelchair=1),
        max_ride_min=45.0,
    )
    assert made == expected
    assert hash(made) == hash(expected)
    assert made.load == expected.load and made.earliest_min == 10.0


@pytest.mark.parametrize("body", [mid_day_body(), SHARED_RIDES_EXAMPLE], ids=["whole", "stops"])
def test_bytes_give_the_request_and_state_the_parsed_json_gives(body: dict[str, Any]) -> None:
    day = LiveDay.from_preset("geneva")
    raw = json.dumps(body).encode()
    from_bytes = parse_body(RoundRequest, raw)
    from_json = RoundRequest.model_validate(json.loads(raw))
    assert from_bytes.model_dump() == from_json.model_dump()
    assert from_bytes.to_state(0.0, day) == from_json.to_state(0.0, day)
    assert from_bytes.to_state(0.0, day).plans_of_stops == (body is SHARED_RIDES_EXAMPLE)


NOT_JSON = [b"not json", b"\xff\xfe\x00garbage", b'{"drivers": [', b"[" * 5000]


@pytest.mark.parametrize("raw", NOT_JSON)
def test_bytes_that_are_not_json_are_refused_as_such(raw: bytes) -> None:
    with pytest.raises(RequestValidationError) as refused:
        parse_body(RoundRequest, raw)
    assert [item["type"] for item in refused.value.errors()] == ["json_invalid"]


STOP_CHANGES = [
    ({"window_opens_in_min": None}, "window_opens_in_min: required for a pickup"),
    ({"window_closes_in_min": 1.0, "window_opens_in_min": 5.0}, "the window closes before"),
    ({"earliest_in_min": 3.0}, "earliest_in_min: only for a break"),
    ({"duration_min": 3.0}, "duration_min: only for a break"),
    ({"done_in_min": 3.0}, "done_in_min: only for a drop-off without a pickup"),
    ({"location": None}, "location: required for a pickup"),
]


@pytest.mark.parametrize(("change", "words"), STOP_CHANGES)
def test_a_stop_that_breaks_a_rule_is_refused_naming_the_field(
    change: dict[str, Any], words: str
) -> None:
    body = json.loads(json.dumps(SHARED_RIDES_EXAMPLE))
    body["drivers"][1]["plan"] = [
        {
            "kind": "pickup",
            "booking_id": "b-2000",
            "location": {"lat": 46.2, "lon": 6.1},
            "requested_in_min": 10,
            "window_opens_in_min": 5,
            "window_closes_in_min": 30,
            **change,
        },
        {"kind": "dropoff", "booking_id": "b-2000", "location": {"lat": 46.19, "lon": 6.15}},
    ]
    with pytest.raises(RequestValidationError) as refused:
        parse_body(RoundRequest, json.dumps(body).encode())
    (item,) = refused.value.errors()
    assert item["loc"][:5] == ("body", "drivers", 1, "plan", 0)
    assert words in item["msg"]


def test_answers_are_written_with_every_field_of_the_decision() -> None:
    candidate = Candidate("d1", 1.5, 2.25, 12.0, 3.5, 2, False, 0.0, 1.0, 1, True, 3)
    assignment = RoundAssignment("b-1", "d1", 2, 12.0, False, 3.5, 3)
    written = CandidateOut.from_candidate(candidate).model_dump()
    assert written == CandidateOut(**dataclasses.asdict(candidate)).model_dump()
    assert written["dropoff_plan_index"] == 3 and written["knock_on_made_late"] == 1
    written = AssignmentOut.from_assignment(assignment).model_dump()
    assert written == AssignmentOut(**dataclasses.asdict(assignment)).model_dump()
    assert written["dropoff_plan_index"] == 3 and written["booking_id"] == "b-1"
