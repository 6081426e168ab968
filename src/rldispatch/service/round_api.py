"""``POST /rl/round``: what the policy does now with the whole state.

The body is the fleet with its plans and the open bookings; the answer is the assignments
the policy makes, in order, before it chooses to wait (or nothing more can be assigned), and
the bookings it holds back: the steps ``evaluate`` plays between two moves of the clock.
Each assignment is logged as a suggestion of its booking, with the round's whole state; a
round that assigns nothing logs its state once, in a row of no booking
(:data:`~rldispatch.service.tables.NOTHING_ASSIGNED`), so a booking that only ever waits is
still in the log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rldispatch.service import workload
from rldispatch.service.api import (
    BODY_RESPONSES,
    ManagerDep,
    StoreDep,
    local_minute_of_day,
    request_items,
)
from rldispatch.service.auth import Reader
from rldispatch.service.fleet_schemas import RoundRequest, RoundResponse
from rldispatch.service.live_view import record_round
from rldispatch.service.store import SuggestionRecord
from rldispatch.service.tables import NOTHING_ASSIGNED

round_router = APIRouter(prefix="/rl", tags=["rl"])


@round_router.post("/round", response_model=RoundResponse, responses=BODY_RESPONSES)
async def dispatch_round(
    body: RoundRequest,
    principal: Reader,
    manager: ManagerDep,
    store: StoreDep,
    request: Request,
) -> Response:
    """The policy's dispatch round: which bookings go to which drivers and where, in order,
    and which wait."""
    state = body.to_state(local_minute_of_day(), manager.day)
    answer = await workload.answer(request, request_items(body), manager.dispatch_round, state)
    response = RoundResponse.from_round(answer)
    record_round(request.app.state.live_view, manager, body, state, answer)
    # Each assignment's log row keeps the whole state, so the day can be rebuilt from the log
    # (rldispatch collect --service-db); "round" tells it from a /rl/suggest row. A round that
    # assigns nothing logs one row of no booking with the same state.
    logged = {
        "round": {"minute_of_day": state.minute_of_day, "drivers": len(body.drivers)},
        "state": body.model_dump(mode="json", exclude_none=True),
    }
    rows: list[tuple[str, str | None, Any]] = [
        (a.booking_id, a.driver_id, a) for a in response.assignments
    ]
    if not rows:  # the state is logged all the same: a booking may only ever wait
        nothing = {"assignments": [], "waiting": response.waiting, "ended": response.ended}
        rows.append((NOTHING_ASSIGNED, None, nothing))
    for booking_id, driver_id, logged_response in rows:
        store.record_suggestion(
            SuggestionRecord(
                booking_id=booking_id,
                arm=None,
                source=answer.source,
                reason=answer.reason,
                driver_id=driver_id,
                shadow_driver_id=None,
                shadow_reason=answer.shadow_reason,
                model_version=answer.model_version,
                latency_ms=answer.latency_ms,
                request=logged,
                response=logged_response,
            )
        )
    return Response(response.model_dump_json(), media_type="application/json")
