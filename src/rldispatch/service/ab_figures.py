"""The A/B comparison read from the decision log: per arm, and per model version (champion and
challenger: the ``rl`` arm's bookings, and the ``/rl/round`` assignments the model made),
suggestions logged and outcomes reported.

``completion_rate`` is the share of the distinct bookings suggested that have an outcome (a
reported pickup): a booking still open, cancelled, or whose outcome was not reported yet
counts as not completed, so compare it between arms or versions over the same period.

The row a ``/rl/round`` that assigned nothing logs (of no booking:
:data:`~rldispatch.service.tables.NOTHING_ASSIGNED`) is neither a suggestion nor a booking:
it is left out of every figure.

Arms are compared as assigned (intention to treat): a booking of the ``rl`` arm the fallback
answered still counts in ``rl``, under the model version it was assigned to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, case, distinct, func, select

from rldispatch.service.tables import is_a_suggestion, outcomes, suggestions


def ab_summary(connection: Connection) -> dict[str, Any]:
    """``{"arms": {arm: figures}, "rl_by_model_version": {version: figures}}``; figures are
    suggestions, distinct bookings suggested, outcomes, completion rate, late rate, mean km
    and mean pickup delay (None without outcomes)."""
    arms = {arm: _empty_figures() for arm in ("rl", "heuristic")}
    versions: dict[str, dict[str, Any]] = {}
    groups = (
        (arms, suggestions.c.arm.in_(tuple(arms)), outcomes.c.arm.in_(tuple(arms)), "arm"),
        (versions, _of_a_version(suggestions.c), _of_a_version(outcomes.c), "model_version"),
    )
    for figures_by, suggested, reported, key in groups:
        for name, count, booked in connection.execute(
            select(suggestions.c[key], func.count(), func.count(distinct(suggestions.c.booking_id)))
            .where(is_a_suggestion, suggested)
            .group_by(suggestions.c[key])
        ):
            figures = figures_by.setdefault(name, _empty_figures())
            figures.update(suggestions=int(count), bookings=int(booked))
        for name, count, late, km, delay in connection.execute(
            select(
                outcomes.c[key],
                func.count(),
                func.sum(case((outcomes.c.late, 1), else_=0)),
                func.sum(outcomes.c.distance_km),
                func.sum(outcomes.c.pickup_delay_min),
            )
            .where(reported)
            .group_by(outcomes.c[key])
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


def _of_a_version(columns: Any) -> ColumnElement[bool]:
    """Whether a row (a suggestion, or an outcome with its suggestion's arm, source and
    version) counts for its model version: a booking of the ``rl`` arm (as assigned), or a
    ``/rl/round`` assignment (no arm: a round is played whole) the model made."""
    return columns.model_version.is_not(None) & (
        (columns.arm == "rl") | (columns.arm.is_(None) & (columns.source == "rl"))
    )


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
