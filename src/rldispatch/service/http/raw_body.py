"""Request bodies parsed and validated in the pool, not on the event loop.

A maximal body (8 MiB: 10,000 drivers and 1,000 bookings) takes about a second to parse and
validate; done on the event loop, as FastAPI does for a body parameter, that second would
hold up every other request, ``/healthz`` too. The suggestion and round endpoints therefore
read their body as bytes (the app's body limit still applies) and validate it in the pool
with :func:`parse_body`, which fails exactly as FastAPI would (a
:class:`~fastapi.exceptions.RequestValidationError` answered 422 naming the field, 400 for a
body that is not JSON). Their OpenAPI request bodies are declared with
:func:`documented_body`, the models' schemas added by :func:`add_body_schemas`.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """``raw`` as JSON validated by ``model``, read straight from the bytes (Pydantic's JSON
    parser: no Python objects of the JSON made on the way).

    :raises RequestValidationError: as FastAPI raises it for a body parameter.
    """
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        items = error.errors(include_url=False, include_input=False)
        if any(item["type"] == "json_invalid" for item in items):  # not JSON, or not UTF-8
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "ctx": {}}]
            ) from None
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in items]
        ) from None


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads ``model`` as its JSON body."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def _body_schemas(models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """The component schemas FastAPI writes for ``models`` as body parameters."""
    router = APIRouter()
    for model in models:

        def endpoint(body: Any) -> None:  # documentation only: never served
            return None

        parameter = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model)
        endpoint.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
        router.add_api_route(f"/{model.__name__}", endpoint, methods=["POST"])
    return get_openapi(title="bodies", version="0", routes=router.routes)["components"]["schemas"]


def add_body_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Have ``app``'s OpenAPI document hold the schemas of ``models`` (and of what they
    contain) as FastAPI writes them."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _body_schemas(models).items():
                if name not in ("HTTPValidationError", "ValidationError"):
                    components.setdefault(name, definition)
            schema["components"]["schemas"] = dict(sorted(components.items()))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
