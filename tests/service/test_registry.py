"""The model registry: decisions recorded in order, the current champion, a version's file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rldispatch.service.log.store import create_store_engine
from rldispatch.service.models import registry


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    engine = create_store_engine(url)
    yield engine
    engine.dispose()


def record(engine: Engine, version: str, status: registry.Status, parent: str | None = None):
    return registry.record_decision(
        engine,
        version=version,
        parent_version=parent,
        path=f"/models/{version}.safetensors",
        sha256="ab" * 32,
        kind="pairwise",
        status=status,
        training_days={"source": "days folder", "days": ["2026-03-01"]},
        report={"decision": "promoted" if status != "refused" else "refused", "ci95": [1, 2]},
        promoted_by="ops",
    )


def test_the_latest_champion_row_is_the_champion(engine: Engine) -> None:
    assert registry.current_champion(engine) is None
    record(engine, "pairwise-a", "champion")
    record(engine, "pairwise-b", "champion", parent="pairwise-a")
    record(engine, "pairwise-c", "refused", parent="pairwise-b")
    record(engine, "pairwise-d", "challenger", parent="pairwise-b")
    champion = registry.current_champion(engine)
    assert champion is not None
    assert (champion.version, champion.parent_version) == ("pairwise-b", "pairwise-a")
    assert champion.report == {"decision": "promoted", "ci95": [1, 2]}
    assert champion.training_days["days"] == ["2026-03-01"]
    assert champion.promoted_at.tzinfo is not None
    assert [e.status for e in registry.entries(engine)] == [
        "challenger",
        "refused",
        "champion",
        "champion",
    ]


def test_a_version_is_found_only_once_promoted(engine: Engine) -> None:
    record(engine, "pairwise-c", "refused")
    assert registry.find_version(engine, "pairwise-c") is None
    record(engine, "pairwise-d", "challenger")
    found = registry.find_version(engine, "pairwise-d")
    assert found is not None and found.path == "/models/pairwise-d.safetensors"


def test_an_unknown_status_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="status: must be one of"):
        record(engine, "pairwise-x", "retired")  # type: ignore[arg-type]


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 1000)
    assert registry.file_sha256(path) == hashlib.sha256(b"weights" * 1000).hexdigest()
