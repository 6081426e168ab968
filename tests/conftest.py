"""Shared fixtures.

Tests marked ``postgres`` need a real PostgreSQL server: set ``RLDISPATCH_TEST_POSTGRES_URL``
(for example ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to run them. Without it
they are skipped; with it set they fail, not skip, when the server does not answer, and with
``RLDISPATCH_REQUIRE_POSTGRES=1`` (as CI sets) a missing URL fails them too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "RLDISPATCH_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "RLDISPATCH_REQUIRE_POSTGRES"


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get(REQUIRE_POSTGRES_ENV):
        pytest.fail(f"{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not")
    if not url:
        pytest.skip(
            f"set {POSTGRES_ENV}=postgresql+psycopg://USER@HOST:5432/DB to run the PostgreSQL tests"
        )
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:  # any failure to connect fails the test, never skips it
        pytest.fail(f"PostgreSQL at {POSTGRES_ENV} does not answer: {error}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """The test server's URL with a fresh schema first on the search path; dropped after, so
    reruns start clean and never touch other tables."""
    from sqlalchemy import create_engine, text

    schema = f"rld_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a test marked ``slow`` run first, each module's tests in their order.

    Under ``pytest -n --dist loadscope`` a worker takes one module at a time in this order, so
    the long modules start early and the short ones fill the end: no worker waits idle while
    another finishes a long module.
    """
    slow_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_modules)
