"""The A/B comparison read from the decision log: per arm, and per model version (champion and
challenger), suggestions logged and outcomes reported. The ``rl`` arm and its model versions
count the same rows: the ``rl`` arm's bookings, and the ``/rl/round`` assignments the model
made (a round is not split between the arms: its assignments count for ``rl`` when the model
made them).

``completion_rate`` is the share of the distinct bookings suggested that have an outcome (a
reported pickup): a booking still open, cancelled, or whose outcome was not reported yet
counts as not completed, so compare it between arms or versions over the same period.

The row a ``/rl/round`` that assigned nothing logs (of no booking:
:data:`~rldispatch.service.log.tables.NOTHING_ASSIGNED`) is neither a suggestion nor a booking:
it is left out of every figure.

Arms are compared as assigned (intention to treat): a booking of the ``rl`` arm the fallback
answered still counts in ``rl``, under the model version it was assigned to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, literal, null, select

from rldispatch.service.log.tables import is_a_suggestion, outcomes, suggestions


def ab_summary(connection: Connection) -> dict[str, Any]:
    """``{"arms": {arm: figures}, "rl_by_model_version": {version: figures}}``; figures are
    suggestions, distinct bookings suggested, outcomes, completion rate, late rate, mean km
    and mean pickup delay (None without outcomes)."""
    arms = {arm: _empty_figures() for arm in ("rl", "heuristic")}
    versions: dict[str, dict[str, Any]] = {}
    groups = (
        (arms, _arm_of(suggestions.c), _arm_of(outcomes.c)),
        (versions, _version_of(suggestions.c), _version_of(outcomes.c)),
    )
    for figures_by, suggested_key, reported_key in groups:
        for name, count, booked in connection.execute(
            select(suggested_key, func.count(), func.count(distinct(suggestions.c.booking_id)))
            .where(is_a_suggestion, suggested_key.is_not(None))
            .group_by(suggested_key)
        ):
            figures = figures_by.setdefault(name, _empty_figures())
            figures.update(suggestions=int(count), bookings=int(booked))
        for name, count, late, km, delay in connection.execute(
            select(
                reported_key,
                func.count(),
                func.sum(case((outcomes.c.late, 1), else_=0)),
                func.sum(outcomes.c.distance_km),
                func.sum(outcomes.c.pickup_delay_min),
            )
            .where(reported_key.is_not(None))
            .group_by(reported_key)
        ):
            figures = figures_by.setdefault(name, _empty_figures())
            figures.update(
                outcomes=int(count),
                late_rate=float(late) / count,
                mean_distance_km=float(km) / count,
                mean_pickup_delay_min=float(delay) / count,
            )
    for figures in (*arms.values(), *versions.values()):
        if figures["bookings"]:
            figures["completion_rate"] = min(1.0, figures["outcomes"] / figures["bookings"])
    return {"arms": arms, "rl_by_model_version": versions}


def _rl_round(columns: Any) -> ColumnElement[bool]:
    """A ``/rl/round`` assignment (no arm: a round is played whole) the model made."""
    return columns.arm.is_(None) & (columns.source == "rl")


def _arm_of(columns: Any) -> ColumnElement[Any]:
    """The arm a row (a suggestion, or an outcome with its suggestion's arm, source and
    version) counts for: its own (as assigned), ``rl`` for a round assignment the model
    made, else none (NULL)."""
    return case(
        (columns.arm.in_(("rl", "heuristic")), columns.arm),
        (_rl_round(columns), literal("rl")),
        else_=null(),
    )


def _version_of(columns: Any) -> ColumnElement[Any]:
    """The model version a row counts for: the rows of the ``rl`` arm (see :func:`_arm_of`)
    that name one, else none (NULL)."""
    counted = (columns.arm == "rl") | _rl_round(columns)
    return case((counted & columns.model_version.is_not(None), columns.model_version), else_=null())


def _empty_figures() -> dict[str, Any]:
    return {
        "suggestions": 0,
        "bookings": 0,
        "outcomes": 0,
        "completion_rate": None,
        "late_rate": None,
        "mean_distance_km": None,
        "mean_pickup_delay_min": None,
    }
