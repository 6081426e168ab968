"""Today's figures from the decision log, the learned policy's side against the fallback's:
decisions, bookings, outcomes reported, late share, mean pickup delay and km, and the
fallback's answers by reason.

A row's side is its A/B arm when it has one (as assigned: a booking of the ``rl`` arm the
fallback answered stays on the ``rl`` side); a ``/rl/round`` assignment or a suggestion made
outside an A/B test (no arm) is on the side of who answered it (``rl``, else ``heuristic``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, distinct, func, select

from rldispatch.service.log.tables import is_a_suggestion, outcomes, suggestions

SIDES = ("rl", "heuristic")


def _side(columns: Any) -> Any:
    return case(
        (columns.arm.is_not(None), columns.arm),
        (columns.source == "rl", "rl"),
        else_="heuristic",
    )


def today_figures(engine: Engine, since: datetime) -> dict[str, Any]:
    """``{"since": ..., "sides": {side: figures}, "fallbacks": {reason: count}}`` of the rows
    logged since ``since``.

    :raises SQLAlchemyError: when the database does not answer.
    """
    sides: dict[str, dict[str, Any]] = {
        side: {
            "decisions": 0,
            "bookings": 0,
            "outcomes": 0,
            "late_rate": None,
            "mean_pickup_delay_min": None,
            "mean_distance_km": None,
        }
        for side in SIDES
    }
    fallbacks: dict[str, int] = {}
    with engine.connect() as connection:
        side = _side(suggestions.c)
        for name, count, booked in connection.execute(
            select(side, func.count(), func.count(distinct(suggestions.c.booking_id)))
            .where(is_a_suggestion, suggestions.c.created_at >= since)
            .group_by(side)
        ):
            if name in sides:
                sides[name].update(decisions=int(count), bookings=int(booked))
        side = _side(outcomes.c)
        for name, count, late, delay, km in connection.execute(
            select(
                side,
                func.count(),
                func.sum(case((outcomes.c.late, 1), else_=0)),
                func.sum(outcomes.c.pickup_delay_min),
                func.sum(outcomes.c.distance_km),
            )
            .where(outcomes.c.created_at >= since)
            .group_by(side)
        ):
            if name in sides and count:
                sides[name].update(
                    outcomes=int(count),
                    late_rate=round(float(late) / count, 4),
                    mean_pickup_delay_min=round(float(delay) / count, 1),
                    mean_distance_km=round(float(km) / count, 1),
                )
        for reason, count in connection.execute(
            select(suggestions.c.reason, func.count())
            .where(
                suggestions.c.source == "fallback",
                suggestions.c.reason.is_not(None),
                suggestions.c.created_at >= since,
            )
            .group_by(suggestions.c.reason)
        ):
            fallbacks[str(reason)] = int(count)
    return {"since": since.isoformat(), "sides": sides, "fallbacks": fallbacks}
