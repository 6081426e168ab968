"""The model registry: every ``rldispatch promote`` decision, in the service's database.

One row per decision (table ``rl_model_registry``), never changed afterwards:

==================  ====================================================================
column              meaning
==================  ====================================================================
``version``         the model's version, as the service reports it (the weights' digest
                    the model file records: ``pairwise-…`` or ``dqn-…``)
``parent_version``  the version of the champion it was measured against (a baseline's
                    name, ``baseline:insertion``, when no model served yet)
``path``            the model file, ``sha256`` its bytes' digest
``status``          ``champion`` (promoted), ``challenger`` (handed to the service as a
                    challenger beside the champion), ``refused`` (it did not beat the
                    champion: recorded too, with the figures)
``training_days``   the days it was trained on (from the model file when it records them,
                    else the dates of the folder before the held-out days)
``report``          the decision report (figures of both models, the paired difference)
``promoted_by``     who ran ``promote`` (``--by``), ``promoted_at`` when
==================  ====================================================================

The current champion is the latest ``champion`` row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, insert, select

from rldispatch.service.log.tables import ensure_schema, model_registry

Status = Literal["champion", "challenger", "refused"]
STATUSES: tuple[Status, ...] = ("champion", "challenger", "refused")


@dataclass(frozen=True)
class RegistryEntry:
    """One decision of the registry."""

    id: int
    version: str
    parent_version: str | None
    path: str
    sha256: str
    kind: str | None
    status: Status
    training_days: Any
    report: dict[str, Any]
    promoted_by: str
    promoted_at: datetime

    def summary(self) -> dict[str, Any]:
        """The entry without its report, as JSON."""
        return {
            "id": self.id,
            "version": self.version,
            "parent_version": self.parent_version,
            "path": self.path,
            "sha256": self.sha256,
            "kind": self.kind,
            "status": self.status,
            "promoted_by": self.promoted_by,
            "promoted_at": self.promoted_at.isoformat(),
        }


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_decision(
    engine: Engine,
    *,
    version: str,
    parent_version: str | None,
    path: str | Path,
    sha256: str,
    kind: str | None,
    status: Status,
    training_days: Any,
    report: dict[str, Any],
    promoted_by: str,
    promoted_at: datetime | None = None,
) -> RegistryEntry:
    """Add a decision to the registry (the table is created first if missing).

    :raises ValueError: an unknown ``status``.
    :raises SQLAlchemyError: when the database does not answer.
    """
    if status not in STATUSES:
        raise ValueError(f"status: must be one of {STATUSES}, got {status!r}")
    ensure_schema(engine)
    row = {
        "version": version,
        "parent_version": parent_version,
        "path": str(path),
        "sha256": sha256,
        "kind": kind,
        "status": status,
        "training_days": training_days,
        "report": report,
        "promoted_by": promoted_by,
        "promoted_at": promoted_at or datetime.now(UTC),
    }
    with engine.begin() as connection:
        key = connection.execute(insert(model_registry).values(row)).inserted_primary_key
    return RegistryEntry(id=int(key[0]), **row)


def _entry(row: Any) -> RegistryEntry:
    values = dict(row._mapping)
    if values["promoted_at"].tzinfo is None:  # SQLite keeps no time zone
        values["promoted_at"] = values["promoted_at"].replace(tzinfo=UTC)
    return RegistryEntry(**values)


def entries(engine: Engine, status: Status | None = None, limit: int = 100) -> list[RegistryEntry]:
    """The latest decisions first (of one ``status`` only, when given)."""
    ensure_schema(engine)
    query = select(model_registry).order_by(model_registry.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(model_registry.c.status == status)
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(query)]


def current_champion(engine: Engine) -> RegistryEntry | None:
    """The latest model promoted to champion, or None."""
    found = entries(engine, "champion", limit=1)
    return found[0] if found else None


def find_version(engine: Engine, version: str) -> RegistryEntry | None:
    """The latest promoted entry (champion or challenger) of ``version``, or None."""
    ensure_schema(engine)
    query = (
        select(model_registry)
        .where(model_registry.c.version == version)
        .where(model_registry.c.status.in_(("champion", "challenger")))
        .order_by(model_registry.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else _entry(row)
