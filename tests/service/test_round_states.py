"""A round's state in the log: once per state and UTC day, compressed, put back as it was."""

from __future__ import annotations

import json
from datetime import date

import pytest

from rldispatch.service.log.round_states import (
    STATE_MINUTE_OF_DAY,
    logged_state,
    resolve_round_request,
    round_request,
    state_text,
)

STATE = json.dumps({"drivers": [{"id": f"d{i}", "free_in_min": i * 0.5} for i in range(300)]})
DAY = date(2026, 3, 2)


def test_the_same_state_on_the_same_day_has_one_key_and_another_day_another() -> None:
    first, again = logged_state(STATE, DAY), logged_state(STATE, DAY)
    assert first.key == again.key
    assert logged_state(STATE, date(2026, 3, 3)).key != first.key
    assert logged_state(STATE.replace("d1", "d9"), DAY).key != first.key


def test_a_state_is_compressed_and_comes_back_byte_for_byte() -> None:
    logged = logged_state(STATE, DAY)
    assert logged.size_bytes < len(STATE) / 4 and logged.json_bytes == len(STATE)
    assert state_text(logged.compressed_b64) == STATE
    with pytest.raises(ValueError, match="not a compressed round state"):
        state_text("bm90IHpsaWI=")


def test_a_row_s_request_names_its_state_and_resolves_with_its_minute() -> None:
    logged = logged_state(STATE, DAY)
    summary = {"minute_of_day": 601.0, "drivers": 300, STATE_MINUTE_OF_DAY: 601.0}
    request = json.loads(round_request(summary, logged))
    assert "state" not in request and request["round"]["state_key"] == logged.key
    resolved = resolve_round_request(request, {logged.key: logged.compressed_b64})
    assert resolved["state"] == {**json.loads(STATE), "minute_of_day": 601.0}
    with pytest.raises(KeyError):
        resolve_round_request(request, {})
    suggestion = {"booking": {"id": "b1"}}
    assert resolve_round_request(suggestion, {}) is suggestion


def test_a_state_too_large_to_log_is_named_as_omitted() -> None:
    request = json.loads(round_request({"minute_of_day": 5.0, "drivers": 1}, None))
    assert request == {"round": {"minute_of_day": 5.0, "drivers": 1, "state_omitted": "too_large"}}
    assert resolve_round_request(request, {}) == request
