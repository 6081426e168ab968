"""The HTTP API (DESIGN.md, "HTTP API contract"): suggest, status, toggle, metrics, outcome,
and what the routers share (the service's parts, the error answers, the dependencies). The
app is assembled in :mod:`rldispatch.service.http.app`; the round's route is in
:mod:`rldispatch.service.http.round_api`, the admin routes of the models in
:mod:`rldispatch.service.http.admin_api`.

``suggest`` and the dispatch round never wait on I/O (the store queues their records); they
run in the pool, in two bounded lanes, each within the request budget
(:mod:`rldispatch.service.decisions.workload`,
:mod:`rldispatch.service.decisions.request_budget`): the event loop only reads bodies and hands
work over. The endpoints that read or write the database
(``outcome`` among them: it is checked and written before the answer) run in the pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from rldispatch.database_url import mask_database_url
from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, TravelConfig
from rldispatch.service.decisions import workload
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.request_budget import RequestBudget
from rldispatch.service.http import prometheus
from rldispatch.service.http.admin_api import save_switch
from rldispatch.service.http.auth import Admin, Reader
from rldispatch.service.http.errors import ErrorOut, ValidationErrorOut
from rldispatch.service.http.fleet_schemas import SuggestRequest, SuggestResponse
from rldispatch.service.http.live_view import record_suggestion
from rldispatch.service.http.raw_body import documented_body, parse_body
from rldispatch.service.http.schemas import (
    ABOut,
    ArmOutcomes,
    LatencyOut,
    LogStatus,
    MetricsResponse,
    ModelStatus,
    ModelVersionOutcomes,
    OutcomeRequest,
    OutcomeResponse,
    StatusResponse,
    StoreStatus,
    ToggleRequest,
    ToggleStateOut,
)
from rldispatch.service.log.retention import Retention, log_size
from rldispatch.service.log.round_states import ROAD_NETWORK
from rldispatch.service.log.store import (
    OutcomeRecord,
    OutcomeRefused,
    Store,
    StoreUnavailable,
    SuggestionRecord,
)
from rldispatch.service.log.switch_watcher import SwitchWatcher
from rldispatch.service.models.model_holder import slot_status

logger = logging.getLogger("rldispatch.service")

MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class Service:
    """What the endpoints share: one manager, one store, the watcher of the switch row."""

    manager: RLDispatchManager
    store: Store
    watcher: SwitchWatcher
    retention: Retention | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_monotonic

    def store_status(self) -> StoreStatus:
        return StoreStatus(url=mask_database_url(self.store.url), **self.store.counts())

    def log_status(self) -> LogStatus:
        """The log's row counts and oldest rows (two small queries), and its retention."""
        retention: dict[str, Any] = (
            self.retention.status()
            if self.retention is not None
            else {"retain_days": None, "archive": False, "pruned": {}, "last_pruned_at": None}
        )
        error = retention.pop("last_error", None)
        size: dict[str, Any] = dict.fromkeys(
            (
                "suggestions",
                "rounds_without_assignment",
                "outcomes",
                "oldest_suggestion_at",
                "oldest_outcome_at",
            )
        )
        if not self.store.available:
            error = "database unavailable"
        else:
            try:
                size = log_size(self.store.engine)
            except SQLAlchemyError as failure:
                error = f"database: {type(failure).__name__}"
        return LogStatus(**size, **retention, error=error)


# --- answers of errors -------------------------------------------------------------------------


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or unknown bearer token"},
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    400: {"model": ErrorOut, "description": "the body is not readable (JSON, UTF-8)"},
    413: {"model": ErrorOut, "description": f"body larger than {MAX_BODY_BYTES} bytes"},
    422: {"model": ValidationErrorOut, "description": "a field breaks its limits"},
}
WORK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    503: {
        "model": ErrorOut,
        "description": "busy: too many requests in progress or waiting (see Retry-After)",
    },
}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts) or "body"


async def validation_error(_request: Request, error: Exception) -> JSONResponse:
    """422 naming each field: its path (``loc``) and message, never echoing the input; 400
    for a body that is not JSON at all."""
    assert isinstance(error, RequestValidationError)
    unreadable = [item for item in error.errors() if item.get("type") == "json_invalid"]
    if unreadable:
        return JSONResponse(
            status_code=status.HTTP_400_BAD_REQUEST,
            content={"detail": "body: not readable JSON (UTF-8 JSON is expected)"},
        )
    details = []
    for item in error.errors():
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"loc": list(item.get("loc", ())), "msg": message, "type": item["type"]})
    summary = "; ".join(f"{_field_path(tuple(d['loc']))}: {d['msg']}" for d in details[:5])
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"message": summary, "detail": details},
    )


# --- dependencies ------------------------------------------------------------------------------
# Async on purpose: FastAPI runs a sync dependency in the thread pool, one hop per dependency.


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_manager(request: Request) -> RLDispatchManager:
    return request.app.state.service.manager


async def get_store(request: Request) -> Store:
    return request.app.state.service.store


ServiceDep = Annotated[Service, Depends(get_service)]
ManagerDep = Annotated[RLDispatchManager, Depends(get_manager)]
StoreDep = Annotated[Store, Depends(get_store)]


def local_minute_of_day() -> float:
    """The server's local clock, minutes after midnight."""
    now = datetime.now().astimezone()
    return now.hour * 60.0 + now.minute + now.second / 60.0


def _state_out(state: ToggleState) -> ToggleStateOut:
    return ToggleStateOut(
        enabled=state.enabled,
        ab_ratio=state.ab_ratio,
        shadow=state.shadow,
        updated_at=state.updated_at,
        updated_by=state.updated_by,
        version=state.version,
    )


# --- /rl ---------------------------------------------------------------------------------------

rl_router = APIRouter(prefix="/rl", tags=["rl"])


@rl_router.post(
    "/suggest",
    response_model=SuggestResponse,
    responses=WORK_RESPONSES,
    openapi_extra=documented_body(SuggestRequest),
)
async def suggest(
    principal: Reader, manager: ManagerDep, store: StoreDep, request: Request
) -> Response:
    """Suggest a driver for one booking, and where in its plan, from the learned policy or
    the fallback."""
    budget = new_budget(request)
    minute_of_day = local_minute_of_day()
    raw = await request.body()

    def work() -> str | None:
        body = parse_body(SuggestRequest, raw)
        live = body.to_live(minute_of_day, manager.day)
        suggestion = manager.suggest(live, budget)
        if budget.stopped_because == "client_disconnected":
            return None  # nobody will read it: not logged, never acted on
        response = SuggestResponse.from_suggestion(suggestion)
        record_suggestion(request.app.state.live_view, manager, body, live, suggestion)
        store.record_suggestion(
            SuggestionRecord(
                booking_id=suggestion.booking_id,
                arm=suggestion.arm,
                source=suggestion.source,
                reason=suggestion.reason,
                driver_id=suggestion.driver_id,
                shadow_driver_id=suggestion.shadow_driver_id,
                shadow_reason=suggestion.shadow_reason,
                model_version=suggestion.model_version,
                latency_ms=suggestion.latency_ms,
                request=logged_suggestion_request(body, manager.day.travel),
                response=response,
            )
        )
        # Built and validated as a SuggestResponse already: serialize once.
        return response.model_dump_json()

    text = await workload.answer(request, len(raw), budget, work)
    return Response(text or "{}", media_type="application/json")


def logged_suggestion_request(body: SuggestRequest, served: TravelConfig) -> Any:
    """What a suggestion's row records of its request: the body with the travel block it was
    played with (its own, else the service's), and the service's road network file beside
    it when there is one (:func:`rldispatch.service.log.round_states.suggestion_body`)."""
    played = body.as_played(served)
    if served.road_network is None:
        return played
    return {**played.model_dump(mode="json"), ROAD_NETWORK: served.road_network}


def new_budget(request: Request) -> RequestBudget:
    """The budget of a request that starts now (the service's ``--request-budget-ms``)."""
    return RequestBudget(request.app.state.request_budget_s)


@rl_router.get("/status", response_model=StatusResponse, responses=AUTH_RESPONSES)
def read_status(principal: Reader, service: ServiceDep) -> StatusResponse:
    """Model loaded (version, path), RL on or off, A/B ratio, shadow mode, uptime."""
    state = service.manager.state
    served = service.manager.models.served
    return StatusResponse(
        model=ModelStatus(**service.manager.model_status()),
        state_version=state.version,
        challenger=ModelStatus(**slot_status(served.challenger)) if served.challenger else None,
        challenger_ratio=served.challenger_ratio,
        enabled=state.enabled,
        ab_ratio=state.ab_ratio,
        shadow=state.shadow,
        state_updated_at=state.updated_at,
        state_updated_by=state.updated_by,
        fallback_policy=service.manager.fallback_policy,
        lookahead=service.manager.lookahead_status(),
        travel=service.manager.travel_status(),
        reward=service.manager.reward_status(),
        worker_pid=os.getpid(),
        started_at=service.started_at,
        uptime_s=service.uptime_s,
        database=service.store_status(),
        log=service.log_status(),
    )


@rl_router.post(
    "/toggle",
    response_model=ToggleStateOut,
    responses={
        **BODY_RESPONSES,
        403: {"model": ErrorOut, "description": "the token is not an admin token"},
        503: {"model": ErrorOut, "description": "the database did not save the change"},
    },
)
def toggle(body: ToggleRequest, principal: Admin, service: ServiceDep) -> ToggleStateOut:
    """Switch RL on or off, set the A/B ratio or shadow mode (admin); survives a restart and
    reaches every worker and instance on the database (compare-and-set on the switch row)."""

    def change(current: ToggleState) -> ToggleState:
        return replace(
            current,
            enabled=current.enabled if body.enabled is None else body.enabled,
            ab_ratio=current.ab_ratio if body.ab_ratio is None else body.ab_ratio,
            shadow=current.shadow if body.shadow is None else body.shadow,
            updated_at=datetime.now(UTC),
            updated_by=principal.name,
        )

    new_state = save_switch(service, change)
    logger.info(
        "toggle by %s: enabled=%s ab_ratio=%s shadow=%s",
        principal.name,
        new_state.enabled,
        new_state.ab_ratio,
        new_state.shadow,
    )
    return _state_out(new_state)


@rl_router.get("/metrics", response_model=MetricsResponse, responses=AUTH_RESPONSES)
def read_metrics(principal: Reader, service: ServiceDep) -> MetricsResponse:
    """Suggestions and rounds, fallbacks by reason, errors, latencies, and the A/B arms'
    outcomes."""
    stats = service.manager.statistics()
    state = service.manager.state
    try:
        summary = service.store.ab_summary()
        ab = ABOut(
            ab_ratio=state.ab_ratio,
            arms={arm: ArmOutcomes(**figures) for arm, figures in summary["arms"].items()},
            rl_by_model_version=[
                ModelVersionOutcomes(model_version=version, **figures)
                for version, figures in sorted(summary["rl_by_model_version"].items())
            ],
        )
    except StoreUnavailable as error:
        ab = ABOut(ab_ratio=state.ab_ratio, arms=None, error=f"database unavailable: {error}")
    return MetricsResponse(
        suggestions=stats.suggestions,
        by_source=stats.by_source,
        rounds=stats.rounds,
        rounds_by_source=stats.rounds_by_source,
        fallbacks=stats.fallbacks,
        errors=stats.errors,
        latency_ms=LatencyOut(**stats.latency_ms, samples=stats.latency_samples),
        round_latency_ms=LatencyOut(**stats.round_latency_ms, samples=stats.round_latency_samples),
        database=service.store_status(),
        ab=ab,
    )


@rl_router.post(
    "/outcome",
    response_model=OutcomeResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **BODY_RESPONSES,
        404: {"model": ErrorOut, "description": "the booking was never suggested"},
        409: {"model": ErrorOut, "description": "the booking has its outcome already"},
        503: {"model": ErrorOut, "description": "the database did not save the outcome"},
    },
)
def report_outcome(body: OutcomeRequest, principal: Reader, store: StoreDep) -> OutcomeResponse:
    """Report a booking's real pickup time and km after the ride (for the A/B comparison):
    one outcome per suggested booking; a repeat is refused (409), never replaces the first."""
    delay_min = (body.picked_up_at - body.requested_pickup_at).total_seconds() / 60.0
    late = delay_min > LATE_AFTER_REQUESTED_MIN
    record = OutcomeRecord(
        booking_id=body.booking_id,
        driver_id=body.driver_id,
        requested_pickup_at=body.requested_pickup_at,
        picked_up_at=body.picked_up_at,
        pickup_delay_min=delay_min,
        late=late,
        distance_km=body.distance_km,
    )
    try:
        store.save_outcome(record)
    except OutcomeRefused as error:
        code = status.HTTP_404_NOT_FOUND if error.kind == "unknown" else status.HTTP_409_CONFLICT
        raise HTTPException(status_code=code, detail=str(error)) from error
    except StoreUnavailable as error:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"database: the outcome was not saved, report it again later ({error})",
        ) from error
    return OutcomeResponse(
        booking_id=body.booking_id, accepted=True, pickup_delay_min=delay_min, late=late
    )


# --- operations --------------------------------------------------------------------------------

ops_router = APIRouter(tags=["operations"])


@ops_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {
            "description": "no or unknown bearer token",
            "content": {"application/json": {"schema": ErrorOut.model_json_schema()}},
        },
    },
)
def prometheus_metrics(principal: Reader, service: ServiceDep) -> PlainTextResponse:
    """The service's figures in the Prometheus text format."""
    text = prometheus.render(
        service.manager.statistics(),
        service.manager.state,
        service.manager.model is not None,
        service.store.counts(),
        service.uptime_s,
    )
    # The log's figures (two small queries and the A/B groups); without the database they are
    # missing, and rldispatch_store_available says why.
    if service.store.available:
        with contextlib.suppress(SQLAlchemyError, StoreUnavailable):
            size, ab = log_size(service.store.engine), service.store.ab_summary()
            text += prometheus.render_log(size, ab)
    return PlainTextResponse(text, media_type=prometheus.CONTENT_TYPE)


class HealthOut(BaseModel):
    status: str


@ops_router.get("/healthz", response_model=HealthOut)
async def health() -> HealthOut:
    """Liveness: answers while the process serves (no token needed, no data)."""
    return HealthOut(status="ok")
