"""The switch: one versioned row every worker and instance on the database shares.

The row (``rl_service_state``, id 1) holds RL on or off, the A/B ratio, shadow mode, the
champion and challenger model files, who changed it last and when, and a ``version`` number.
A change is a **compare-and-set**: read the row, apply the change to what was read, write it
back only if the version is still the one read (raising it by one), else read again and
retry. Two admins changing different fields at once therefore both keep their change, and a
worker learns of any change by polling the version alone (:func:`read_version`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.log.tables import STATE_ROW_ID, service_state

MAX_ATTEMPTS = 50


class SwitchConflict(RuntimeError):
    """The row kept changing under us for :data:`MAX_ATTEMPTS` attempts."""


def _row_to_state(row: Any) -> ToggleState:
    updated_at = row.updated_at
    if updated_at.tzinfo is None:  # SQLite keeps no time zone
        updated_at = updated_at.replace(tzinfo=UTC)
    return ToggleState(
        enabled=bool(row.enabled),
        ab_ratio=float(row.ab_ratio),
        shadow=bool(row.shadow),
        updated_at=updated_at,
        updated_by=row.updated_by,
        champion_path=row.champion_path,
        champion_version=row.champion_version,
        challenger_path=row.challenger_path,
        challenger_version=row.challenger_version,
        challenger_ratio=float(row.challenger_ratio or 0.0),
        version=int(row.version or 0),
    )


def _values(state: ToggleState) -> dict[str, Any]:
    return {
        "enabled": state.enabled,
        "ab_ratio": state.ab_ratio,
        "shadow": state.shadow,
        "updated_at": state.updated_at,
        "updated_by": state.updated_by,
        "champion_path": state.champion_path,
        "champion_version": state.champion_version,
        "challenger_path": state.challenger_path,
        "challenger_version": state.challenger_version,
        "challenger_ratio": state.challenger_ratio,
    }


def read_state(connection: Connection) -> ToggleState | None:
    """The row, or None when no change was ever saved."""
    row = connection.execute(
        select(service_state).where(service_state.c.id == STATE_ROW_ID)
    ).first()
    return None if row is None else _row_to_state(row)


def read_version(connection: Connection) -> int | None:
    """The row's version alone (the cheap poll); None when there is no row yet."""
    return connection.execute(
        select(service_state.c.version).where(service_state.c.id == STATE_ROW_ID)
    ).scalar()


def compare_and_set(engine: Engine, change: Callable[[ToggleState], ToggleState]) -> ToggleState:
    """Apply ``change`` to the row as it is now and save it, retrying on a concurrent change.

    :param change: the new state from the current one (its ``version`` is ignored).
    :returns: the saved state, with its new version.
    :raises SwitchConflict: after :data:`MAX_ATTEMPTS` lost races.
    :raises SQLAlchemyError: when the database does not answer.
    """
    for _ in range(MAX_ATTEMPTS):
        with engine.begin() as connection:
            current = read_state(connection)
            base = current or ToggleState()
            new = change(base)
            values = _values(new)
            if current is None:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(service_state).values(id=STATE_ROW_ID, version=1, **values)
                        )
                except IntegrityError:
                    continue  # another writer inserted the row first: read it and retry
                return _with_version(new, 1)
            result = connection.execute(
                update(service_state)
                .where(service_state.c.id == STATE_ROW_ID)
                .where(service_state.c.version == current.version)
                .values(version=current.version + 1, **values)
            )
            if result.rowcount == 1:
                return _with_version(new, current.version + 1)
    raise SwitchConflict(f"the switch changed {MAX_ATTEMPTS} times while saving; try again")


def _with_version(state: ToggleState, version: int) -> ToggleState:
    from dataclasses import replace

    return replace(state, version=version)
