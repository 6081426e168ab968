"""The service's FastAPI app: ``create_app(config)`` builds the manager (model loaded once),
the token registry and the store, and mounts the routers (:mod:`rldispatch.service.http.api`,
:mod:`rldispatch.service.http.round_api`, :mod:`rldispatch.service.http.admin_api`) and the
dispatcher's page (:mod:`rldispatch.service.http.ui`). When the app
starts the store's writer starts and the switch row is read and then watched
(:mod:`rldispatch.service.log.switch_watcher`), and buffered records are written when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from rldispatch.service.config import ServiceConfig
from rldispatch.service.decisions import workload
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.request_budget import RequestBudget
from rldispatch.service.http import ui
from rldispatch.service.http.admin_api import MODEL_RESPONSES, admin_router
from rldispatch.service.http.api import (
    MAX_BODY_BYTES,
    Service,
    ops_router,
    rl_router,
    validation_error,
)
from rldispatch.service.http.auth import build_registry
from rldispatch.service.http.fleet_schemas import RoundRequest, SuggestRequest
from rldispatch.service.http.raw_body import add_body_schemas
from rldispatch.service.http.round_api import round_router
from rldispatch.service.log.retention import Retention
from rldispatch.service.log.store import Store, prepare_private_folder
from rldispatch.service.log.switch_watcher import SwitchWatcher


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The service's FastAPI app (see the module docstring)."""
    config = config or ServiceConfig.from_env()
    prepare_private_folder(config.data_dir)
    tokens = build_registry(config.environ, config.tokens_file, config.data_dir)
    manager = RLDispatchManager(
        config.model_path,
        runtime=config.runtime,
        fallback_policy=config.fallback_policy,
        fallback_time_limit_s=config.fallback_time_limit_s,
        models_dir=config.resolved_models_dir,
        lookahead=config.lookahead_settings,
        travel=config.travel(),
        reward=config.reward(),
        road_network=config.road_network(),
    )
    store = Store(config.resolved_database_url)
    watcher = SwitchWatcher(store, manager)
    retention = (
        Retention(store.engine, config.retain_days, config.archive_dir)
        if config.retain_days is not None
        else None
    )
    service = Service(manager=manager, store=store, watcher=watcher, retention=retention)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(store.start)
        await asyncio.to_thread(watcher.sync)
        await asyncio.to_thread(manager.warm_up)
        workload.settle_heap()
        watcher.start()
        if retention is not None:
            retention.start()
        try:
            yield
        finally:
            RequestBudget.stop_all("shutdown")  # work still running winds down now
            if retention is not None:
                await asyncio.to_thread(retention.stop)
            await asyncio.to_thread(watcher.stop)
            await asyncio.to_thread(store.close)

    app = FastAPI(
        title="rldispatch",
        summary="Ride dispatch suggestions from a learned policy, with a heuristic safety net.",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
        docs_url=None,  # served with local assets by rldispatch.service.http.ui
        redoc_url=None,
    )
    app.state.service = service
    app.state.tokens = tokens
    app.add_exception_handler(RequestValidationError, validation_error)
    app.state.lanes = workload.new_lanes()
    app.state.request_budget_s = config.request_budget_ms / 1e3
    app.include_router(rl_router)
    app.include_router(round_router)
    app.include_router(admin_router, responses=MODEL_RESPONSES)
    app.include_router(ops_router)
    ui.install(app, config.tile_url)
    add_body_schemas(app, SuggestRequest, RoundRequest)
    return app
