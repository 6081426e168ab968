"""Schemathesis against the live app's own OpenAPI schema: no 5xx, no answer off-schema.

Every operation of ``/openapi.json`` gets up to ``MAX_EXAMPLES`` generated requests, valid
(positive) and invalid (negative), sent with an admin token to the real server. (The
``schemathesis.pytest.from_fixture`` loader does not run under pytest 9, so the test drives
each operation's Hypothesis strategy itself.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.helpers import ADMIN_TOKEN, ThreadedServer, auth

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = {
    "GET /healthz",
    "GET /metrics",
    "GET /rl/metrics",
    "GET /rl/status",
    "POST /rl/outcome",
    "POST /rl/round",
    "POST /rl/suggest",
    "POST /rl/toggle",
}
NOTHING_TO_NEGATE = {"GET /healthz"}  # no parameters, no body, no token: no invalid request


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path
) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("schemathesis"), model=model_path) as server:
        yield server


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_within_its_schema(api_server: ThreadedServer, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == OPERATIONS
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        if mode is GenerationMode.NEGATIVE and name in NOTHING_TO_NEGATE:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=api_server.url, headers=auth(ADMIN_TOKEN), checks=CHECKS, timeout=30
            )

        check()
