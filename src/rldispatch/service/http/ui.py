"""The dispatcher's page (``GET /ui``), the live state it polls (``GET /ui/state``), its
static assets and the API's self-hosted documentation (``/docs``).

The page holds no data: it asks for an API token, keeps it in the browser tab's session
storage and reads everything with it from ``/ui/state`` (any token), and an admin token
switches RL and sets the A/B share through ``POST /rl/toggle``. Every asset (the page's
script and style, Leaflet, Swagger UI) is served from the package; only the map's tiles come
from outside, from the tile URL the service is configured with (``serve --tile-url``; none: no
basemap), and the page works without them.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from rldispatch.service.http.api import AUTH_RESPONSES, ServiceDep
from rldispatch.service.http.auth import Reader
from rldispatch.service.http.fleet_view import fleet_view
from rldispatch.service.http.live_view import LiveView, SeenState
from rldispatch.service.http.logged_state import logged_decisions, logged_state, newest_row
from rldispatch.service.log.retention import log_size
from rldispatch.service.log.today_figures import today_figures

STATIC_URL = "/ui/static"
DECISIONS_SHOWN = 25
OWN_ROWS_S = 0.2
"""A log row this much newer than this worker's latest state is another worker's state (this
worker's own rows are logged right after it keeps its state)."""
POLL_INTERVAL_S = 2.0

DEFAULT_TILE_ATTRIBUTION = "&copy; OpenStreetMap contributors"
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def content_security_policy(tile_url: str) -> str:
    """The page's policy: scripts, styles and calls from the service only, images also from
    the tile server (a ``{s}`` subdomain placeholder becomes ``*``)."""
    images = "'self' data:"
    if tile_url.startswith(("http://", "https://")):
        parts = urlsplit(tile_url)
        host = re.sub(r"\{[a-z]+\}", "*", parts.netloc)
        images += f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )


def static_dir() -> str:
    """The folder of the page's assets inside the package."""
    return str(resources.files("rldispatch.service.http") / "static")


class _LoggedCache:
    """The latest state read from the log, by its row id (read once per row)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._row: int | None = None
        self._seen: SeenState | None = None

    def get(self, row_id: int, read: Any) -> SeenState | None:
        with self._lock:
            if row_id == self._row:
                return self._seen
        seen = read()
        with self._lock:
            self._row, self._seen = row_id, seen
        return seen


def newest_state(service: Any, view: LiveView, cache: _LoggedCache) -> tuple[SeenState | None, str]:
    """The newest state the service answered and where it was read: this worker's memory
    (``worker``), or the decision log when another worker (or instance) answered a newer one
    (``log``)."""
    seen, _ = view.latest()
    if not service.store.available:
        return seen, "worker"
    try:
        newest = newest_row(service.store.engine)
        if newest is None or (
            seen is not None and newest[1] <= seen.at + timedelta(seconds=OWN_ROWS_S)
        ):
            return seen, "worker"
        row_id = newest[0]
        logged = cache.get(
            row_id,
            lambda: logged_state(service.store.engine, row_id, service.manager.day, row_id),
        )
    except SQLAlchemyError:
        return seen, "worker"
    return (logged, "log") if logged is not None else (seen, "worker")


class _FleetCache:
    """The page's fleet of the latest state, computed once per state (the page polls)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._value: dict[str, Any] | None = None

    def get(self, key: tuple[str, int], compute: Any) -> dict[str, Any]:
        """The fleet of the state ``key`` (where it was read, its sequence)."""
        with self._lock:
            if key == self._key and self._value is not None:
                return self._value
        value = compute()
        with self._lock:
            self._key, self._value = key, value
        return value


def _local_midnight_utc() -> datetime:
    now = datetime.now().astimezone()
    return now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _answered(
    count: int, by_source: dict[str, int], latency_ms: dict[str, float | None]
) -> dict[str, Any]:
    return {
        "count": count,
        "by_source": by_source,
        "latency_ms": {k: None if v is None else round(v, 2) for k, v in latency_ms.items()},
    }


def _decision_out(decision: Any) -> dict[str, Any]:
    return {
        "at": decision.at.isoformat(),
        "kind": decision.kind,
        "booking_id": decision.booking_id,
        "driver_id": decision.driver_id,
        "source": decision.source,
        "reason": decision.reason,
        "model_version": decision.model_version,
        "arm": decision.arm,
        "latency_ms": round(decision.latency_ms, 2),
        "lookahead": decision.lookahead,
        "late": decision.late,
        "pickup_in_min": None
        if decision.pickup_in_min is None
        else round(decision.pickup_in_min, 1),
        "shadow_driver_id": decision.shadow_driver_id,
    }


def _decisions(service: Any, kept: list[Any]) -> list[dict[str, Any]]:
    """This worker's last decisions, after the log's newer ones (another worker's), newest
    first."""
    mine = [_decision_out(d) for d in kept[:DECISIONS_SHOWN]]
    if not service.store.available:
        return mine
    after = kept[0].at + timedelta(seconds=OWN_ROWS_S) if kept else None
    try:
        others = logged_decisions(service.store.engine, after, DECISIONS_SHOWN)
    except SQLAlchemyError:
        return mine
    return (others + mine)[:DECISIONS_SHOWN]


def _log_figures(service: Any) -> dict[str, Any]:
    """Today's figures and the log's size, or the reason they are missing."""
    if not service.store.available:
        return {"today": None, "log": None, "error": "database unavailable"}
    try:
        engine = service.store.engine
        size = log_size(engine)
        return {
            "today": today_figures(engine, _local_midnight_utc()),
            "log": {
                key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in size.items()
            },
            "error": None,
        }
    except SQLAlchemyError as error:
        return {"today": None, "log": None, "error": f"database: {type(error).__name__}"}


ui_router = APIRouter(tags=["dispatcher's page"])


@ui_router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    """The dispatcher's page (it asks for a token and reads ``/ui/state`` with it)."""
    settings = {
        "tileUrl": request.app.state.ui_tile_url,
        "tileAttribution": DEFAULT_TILE_ATTRIBUTION,
        "pollIntervalMs": int(POLL_INTERVAL_S * 1000),
        "static": STATIC_URL,
    }
    template = (resources.files("rldispatch.service.http") / "static" / "ui.html").read_text(
        "utf-8"
    )
    text = template.replace("{{settings}}", html.escape(json.dumps(settings), quote=True))
    policy = content_security_policy(request.app.state.ui_tile_url)
    return HTMLResponse(text, headers={**_SECURITY_HEADERS, "Content-Security-Policy": policy})


@ui_router.get("/ui/state", responses=AUTH_RESPONSES)
def live_state(principal: Reader, service: ServiceDep, request: Request) -> JSONResponse:
    """What the page shows: the fleet of the latest state this worker was sent (with its
    answer applied), the last decisions with who answered them, the switch, the model,
    latency, today's figures by side and the log's size."""
    view: LiveView = request.app.state.live_view
    _, decisions = view.latest()
    seen, origin = newest_state(service, view, request.app.state.ui_logged_cache)
    manager = service.manager
    fleet = None
    if seen is not None:
        cache: _FleetCache = request.app.state.ui_fleet_cache
        fleet = cache.get(
            (origin, seen.sequence),
            lambda: fleet_view(seen, manager.day, manager.fallback_config(len(seen.state.drivers))),
        )
        fleet = {**fleet, "origin": origin}
    toggle = manager.state
    stats = manager.statistics()
    served = manager.models.served
    body = {
        "viewer": {"name": principal.name, "admin": principal.is_admin},
        "worker_pid": os.getpid(),
        "now": datetime.now(UTC).isoformat(),
        "switch": {
            "enabled": toggle.enabled,
            "ab_ratio": toggle.ab_ratio,
            "shadow": toggle.shadow,
            "version": toggle.version,
            "updated_by": toggle.updated_by,
            "updated_at": toggle.updated_at.isoformat() if toggle.updated_at else None,
        },
        "model": manager.model_status(),
        "challenger": served.challenger.version if served.challenger else None,
        "fallback_policy": manager.fallback_policy,
        "lookahead": manager.lookahead_status(),
        "answers": {
            "suggestions": _answered(stats.suggestions, stats.by_source, stats.latency_ms),
            "rounds": _answered(stats.rounds, stats.rounds_by_source, stats.round_latency_ms),
            "fallbacks": stats.fallbacks,
            "errors": stats.errors,
        },
        "fleet": fleet,
        "decisions": _decisions(service, decisions),
        **_log_figures(service),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def install(app: FastAPI, tile_url: str | None) -> None:
    """Add the page, its state, its assets and the self-hosted ``/docs`` to ``app`` (built
    with ``docs_url=None``); ``tile_url`` None or empty: no basemap."""
    app.state.live_view = LiveView()
    app.state.ui_fleet_cache = _FleetCache()
    app.state.ui_logged_cache = _LoggedCache()
    app.state.ui_tile_url = tile_url or ""
    app.mount(STATIC_URL, StaticFiles(directory=static_dir()), name="ui-static")
    app.include_router(ui_router)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
