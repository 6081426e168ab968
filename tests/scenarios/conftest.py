"""Fixtures shared by the scenario tests."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text


@pytest.fixture
def postgres_engine(postgres_url):
    """An engine whose tables live in a fresh schema, dropped afterwards."""
    schema = f"test_history_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
