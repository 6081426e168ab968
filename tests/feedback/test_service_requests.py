"""The clock of a logged request (``rldispatch.feedback.service_requests.request_clock``)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rldispatch.feedback.service_requests import request_clock
from rldispatch.service.http.fleet_schemas import FleetState

HISTORY = Path(__file__).resolve().parents[2] / "docs" / "history.md"
ZURICH = ZoneInfo("Europe/Zurich")
LOGGED = datetime(2026, 3, 2, 14, 7, tzinfo=ZURICH)
"""When the row was logged, as the service's local time."""


def state(**fields: object) -> FleetState:
    return FleetState.model_validate(
        {
            "drivers": [
                {"id": "d1", "position": {"lat": 46.2, "lon": 6.14}, "shift_ends_in_min": 300}
            ],
            "open_bookings": [],
            **fields,
        }
    )


def test_a_request_s_clock_is_its_minute_of_day_on_its_service_date_else_the_log_s_date() -> None:
    replayed = state(minute_of_day=600, service_date="2026-02-10")
    assert request_clock(replayed, LOGGED) == datetime(2026, 2, 10, 10, 0, tzinfo=ZURICH)
    live = state(minute_of_day=600)
    assert request_clock(live, LOGGED) == datetime(2026, 3, 2, 10, 0, tzinfo=ZURICH)
    no_clock = state(service_date="2026-02-10")
    assert request_clock(no_clock, LOGGED) == datetime(2026, 2, 10, 14, 7, tzinfo=ZURICH)
    assert request_clock(state(), LOGGED) == LOGGED
    assert request_clock(replayed, LOGGED).date() == date(2026, 2, 10)


def test_history_md_gives_the_same_rule() -> None:
    """docs/history.md's *Service days and clocks* says which date a logged request's
    ``minute_of_day`` is on: the request's ``service_date`` when it names one."""
    text = HISTORY.read_text(encoding="utf-8")
    paragraph = re.search(r"\*\*Service days and clocks\.\*\*(.*?)\n\n", text, re.S)
    assert paragraph is not None
    assert "`service_date`" in paragraph.group(1)
