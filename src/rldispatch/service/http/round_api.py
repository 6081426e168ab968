"""``POST /rl/round``: what the policy does now with the whole state.

The body is the fleet with its plans and the open bookings; the answer is the assignments
the policy makes, in order, before it chooses to wait (or nothing more can be assigned), and
the bookings it holds back: the steps ``evaluate`` plays between two moves of the clock.
Each assignment is logged as a suggestion of its booking; a round that assigns nothing logs
a row of no booking (:data:`~rldispatch.service.log.tables.NOTHING_ASSIGNED`), so a booking that
only ever waits is still in the log. The round's state is logged once, compressed, and its
rows name it (:mod:`rldispatch.service.log.round_states`). The work runs in the pool within the
request's budget (:mod:`rldispatch.service.decisions.workload`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rldispatch.domain import TravelConfig
from rldispatch.service.decisions import workload
from rldispatch.service.decisions.manager import DispatchRound
from rldispatch.service.http.api import (
    WORK_RESPONSES,
    ManagerDep,
    StoreDep,
    local_minute_of_day,
    new_budget,
)
from rldispatch.service.http.auth import Reader
from rldispatch.service.http.fleet_schemas import RoundRequest, RoundResponse
from rldispatch.service.http.live_view import record_round
from rldispatch.service.http.raw_body import documented_body, parse_body
from rldispatch.service.log.round_states import ROAD_NETWORK, STATE_MINUTE_OF_DAY
from rldispatch.service.log.store import Store, SuggestionRecord
from rldispatch.service.log.tables import NOTHING_ASSIGNED

round_router = APIRouter(prefix="/rl", tags=["rl"])


@round_router.post(
    "/round",
    response_model=RoundResponse,
    responses=WORK_RESPONSES,
    openapi_extra=documented_body(RoundRequest),
)
async def dispatch_round(
    principal: Reader, manager: ManagerDep, store: StoreDep, request: Request
) -> Response:
    """The policy's dispatch round: which bookings go to which drivers and where, in order,
    and which wait."""
    budget = new_budget(request)
    minute_of_day = local_minute_of_day()
    raw = await request.body()

    def work() -> str | None:
        body = parse_body(RoundRequest, raw)
        state = body.to_state(minute_of_day, manager.day)
        answer = manager.dispatch_round(state, budget)
        if budget.stopped_because == "client_disconnected":
            return None  # nobody will read it: not logged, never acted on
        response = RoundResponse.from_round(answer)
        record_round(request.app.state.live_view, manager, body, state, answer)
        log_round(store, body, state.minute_of_day, answer, response, manager.day.travel)
        return response.model_dump_json()

    text = await workload.answer(request, len(raw), budget, work)
    return Response(text or "{}", media_type="application/json")


def log_round(
    store: Store,
    body: RoundRequest,
    minute_of_day: float,
    answer: DispatchRound,
    response: RoundResponse,
    served: TravelConfig,
) -> None:
    """A row per assignment (a round that assigns nothing: one row of no booking), all naming
    the round's state, which is logged once (:mod:`rldispatch.service.log.round_states`), with
    the travel the round was played with: the request's block, else ``served``'s (the
    service's), and the road network file in the summary when there is one."""
    rows: list[tuple[str, str | None, Any]] = [
        (a.booking_id, a.driver_id, a) for a in response.assignments
    ]
    if not rows:  # the state is logged all the same: a booking may only ever wait
        nothing = {"assignments": [], "waiting": response.waiting, "ended": response.ended}
        rows.append((NOTHING_ASSIGNED, None, nothing))
    created_at = datetime.now(UTC)
    records = [
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
            request=None,
            response=logged_response,
            created_at=created_at,
        )
        for booking_id, driver_id, logged_response in rows
    ]
    summary: dict[str, Any] = {"minute_of_day": minute_of_day, "drivers": len(body.drivers)}
    if body.minute_of_day is not None:  # kept beside the state: the same state every minute
        summary[STATE_MINUTE_OF_DAY] = body.minute_of_day
    if served.road_network is not None:
        summary[ROAD_NETWORK] = served.road_network
    played = body.as_played(served)
    state_json = played.model_dump_json(exclude_none=True, exclude={"minute_of_day"})
    store.record_round(records, summary, state_json)
