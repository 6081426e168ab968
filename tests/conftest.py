"""Shared fixtures.

Tests marked ``postgres`` need a real PostgreSQL server: set ``RLDISPATCH_TEST_POSTGRES_URL``
(for example ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to run them. Without it
they are skipped; with it set they fail, not skip, when the server does not answer.
"""

from __future__ import annotations

import os

import pytest

POSTGRES_ENV = "RLDISPATCH_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"set {POSTGRES_ENV}=postgresql+psycopg://USER@HOST:5432/DB to run the PostgreSQL tests"
        )
    return url
