"""Swapping models without a restart: the champion, and a challenger beside it (admin).

``PUT /rl/models/champion`` and ``PUT /rl/models/challenger`` take a model file's path on the
server's disk, inside the models folder (``--models-dir``); the file is loaded and checked in
this worker first, and a file that cannot serve is refused (422, with the reason) while the old
model keeps serving. A file that passes is written to the switch row (compare-and-set, with its
weights' version) and served by this worker at once; every other worker and instance on the
database loads it within about a second (:mod:`rldispatch.service.log.switch_watcher`). The
challenger answers a share ``ratio`` of the ``rl`` arm's bookings (by a hash of the booking
id); ``/rl/metrics`` shows the ``rl`` arm's outcomes per model version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rldispatch.agents.serving import ModelLoadError
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.http.auth import Admin, Reader
from rldispatch.service.http.errors import ErrorOut, ValidationErrorOut
from rldispatch.service.http.schemas import ModelStatus
from rldispatch.service.log.store import StoreUnavailable
from rldispatch.service.models.model_holder import slot_status

MODEL_PATH_LENGTH = 1024


MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or unknown bearer token"},
}
_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not readable (JSON, UTF-8)"},
    403: {"model": ErrorOut, "description": "the token is not an admin token"},
    422: {
        "model": ValidationErrorOut,
        "description": "a field breaks its limits, or the model file is refused (the reason)",
    },
    503: {"model": ErrorOut, "description": "the database did not save the change"},
}


def _no_null_byte(path: str) -> str:
    if "\x00" in path:
        raise ValueError("must not contain a null byte")
    return path


ModelPath = Annotated[
    str,
    AfterValidator(_no_null_byte),
    Field(
        min_length=1,
        max_length=MODEL_PATH_LENGTH,
        description=(
            "a .safetensors or .onnx file inside the server's models folder (absolute, or "
            "relative to that folder)"
        ),
    ),
]


class ChampionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: ModelPath


class ChallengerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: ModelPath
    ratio: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)] = Field(
        0.5, description="share of the rl arm's bookings the challenger answers"
    )


class ModelsOut(BaseModel):
    champion: ModelStatus
    challenger: ModelStatus | None
    challenger_ratio: float
    models_dir: str | None
    state_version: int


admin_router = APIRouter(prefix="/rl/models", tags=["models"])


def _models_out(request: Request) -> ModelsOut:
    service = request.app.state.service
    holder = service.manager.models
    served = holder.served
    return ModelsOut(
        champion=ModelStatus(**slot_status(served.champion)),
        challenger=ModelStatus(**slot_status(served.challenger)) if served.challenger else None,
        challenger_ratio=served.challenger_ratio,
        models_dir=str(holder.models_dir) if holder.models_dir else None,
        state_version=service.manager.state.version,
    )


def _refused(reason: str) -> JSONResponse:
    """422 naming the field once: a refusal of the path itself already says ``path: ...``."""
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "message": reason if reason.startswith("path: ") else f"path: {reason}",
            "detail": [{"loc": ["body", "path"], "msg": reason, "type": "model_refused"}],
        },
    )


def save_switch(
    service: Any,
    change: Callable[[ToggleState], ToggleState],
    before_serving: Callable[[], None] | None = None,
) -> ToggleState:
    """Compare-and-set ``change`` on the switch row, then serve it in this worker (after
    ``before_serving``: a model loaded already is installed, not loaded again); a 503 naming
    the database when it did not take the change."""
    try:
        state = service.store.update_state(change)
    except StoreUnavailable as error:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"database: the change was not saved, nothing changed ({error})",
        ) from error
    if before_serving is not None:
        before_serving()
    service.watcher.apply(state)
    return state


async def _swap(request: Request, role: str, path: str, ratio: float, who: str) -> Any:
    holder = request.app.state.service.manager.models
    try:
        resolved, model = await run_in_threadpool(holder.load, path)
    except ModelLoadError as error:
        return _refused(str(error))

    def change(current: ToggleState) -> ToggleState:
        stamp = {"updated_at": datetime.now(UTC), "updated_by": who}
        if role == "champion":
            return replace(
                current, champion_path=str(resolved), champion_version=model.version, **stamp
            )
        return replace(
            current,
            challenger_path=str(resolved),
            challenger_version=model.version,
            challenger_ratio=ratio,
            **stamp,
        )

    await run_in_threadpool(
        save_switch,
        request.app.state.service,
        change,
        lambda: holder.install(role, resolved, model, ratio),
    )
    return _models_out(request)


@admin_router.get("", response_model=ModelsOut)
def read_models(principal: Reader, request: Request) -> ModelsOut:
    """The champion and challenger models, the challenger's share, the models folder."""
    return _models_out(request)


@admin_router.put("/champion", response_model=ModelsOut, responses=_CHANGE_RESPONSES)
async def swap_champion(body: ChampionRequest, principal: Admin, request: Request) -> Any:
    """Load, check and serve a new champion model, on every worker (admin)."""
    return await _swap(request, "champion", body.path, 0.0, principal.name)


@admin_router.put("/challenger", response_model=ModelsOut, responses=_CHANGE_RESPONSES)
async def start_challenger(body: ChallengerRequest, principal: Admin, request: Request) -> Any:
    """Load, check and serve a challenger beside the champion for a share of the rl arm."""
    return await _swap(request, "challenger", body.path, body.ratio, principal.name)


@admin_router.delete(
    "/challenger",
    response_model=ModelsOut,
    responses={k: v for k, v in _CHANGE_RESPONSES.items() if k in (403, 503)},
)
def stop_challenger(principal: Admin, request: Request) -> ModelsOut:
    """End the challenger: the champion answers the whole rl arm again (admin)."""

    def change(current: ToggleState) -> ToggleState:
        return replace(
            current,
            challenger_path=None,
            challenger_version=None,
            challenger_ratio=0.0,
            updated_at=datetime.now(UTC),
            updated_by=principal.name,
        )

    save_switch(request.app.state.service, change)
    return _models_out(request)
