"""The A/B comparison read from the decision log: per arm, and per model version (champion and
challenger: the ``rl`` arm's bookings, and the ``/rl/round`` assignments the model made),
suggestions logged and outcomes reported.

``completion_rate`` is the share of the distinct bookings suggested that have an outcome (a
reported pickup): a booking still open, cancelled, or whose outcome was not reported yet
counts as not completed, so compare it between arms or versions over the same period.

Arms are compared as assigned (intention to treat): a booking of the ``rl`` arm the fallback
answered still counts in ``rl``, under the model version it was assigned to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, distinct, func, select

from rldispatch.service.tables import outcomes, suggestions


def ab_summary(connection: Connection) -> dict[str, Any]:
    """``{"arms": {arm: figures}, "rl_by_model_version": {version: figures}}``; figures are
    suggestions, distinct bookings suggested, outcomes, completion rate, late rate, mean km
    and mean pickup delay (None without outcomes)."""
    arms = {arm: _empty_figures() for arm in ("rl", "heuristic")}
    versions: dict[str, dict[str, Any]] = {}
    for arm, source, version, count, booked in connection.execute(
        select(
            suggestions.c.arm,
            suggestions.c.source,
            suggestions.c.model_version,
            func.count(),
            func.count(distinct(suggestions.c.booking_id)),
        ).group_by(suggestions.c.arm, suggestions.c.source, suggestions.c.model_version)
    ):
        if arm in arms:
            arms[arm]["suggestions"] += int(count)
            arms[arm]["bookings"] += int(booked)
        if _of_a_version(arm, source, version):
            figures = versions.setdefault(version, _empty_figures())
            figures.update(suggestions=int(count), bookings=int(booked))
    for arm, source, version, count, late, km, delay in connection.execute(
        select(
            outcomes.c.arm,
            outcomes.c.source,
            outcomes.c.model_version,
            func.count(),
            func.sum(case((outcomes.c.late, 1), else_=0)),
            func.sum(outcomes.c.distance_km),
            func.sum(outcomes.c.pickup_delay_min),
        ).group_by(outcomes.c.arm, outcomes.c.source, outcomes.c.model_version)
    ):
        sums = (int(count), float(late), float(km), float(delay))
        if arm in arms:
            _add_outcomes(arms[arm], *sums)
        if _of_a_version(arm, source, version):
            _add_outcomes(versions.setdefault(version, _empty_figures()), *sums)
    for figures in (*arms.values(), *versions.values()):
        if figures["bookings"]:
            figures["completion_rate"] = min(1.0, figures["outcomes"] / figures["bookings"])
    return {"arms": arms, "rl_by_model_version": versions}


def _of_a_version(arm: str | None, source: str | None, version: str | None) -> bool:
    """Whether a row counts for its model version: a booking of the ``rl`` arm (as assigned),
    or a ``/rl/round`` assignment (no arm: a round is played whole) the model made."""
    if version is None:
        return False
    return arm == "rl" or (arm is None and source == "rl")


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


def _add_outcomes(figures: dict[str, Any], count: int, late: float, km: float, delay: float):
    """Add a group's outcome sums to ``figures`` (rates and means over all its outcomes)."""
    if not count:
        return
    before = figures["outcomes"]
    total = before + count

    def mean(name: str, group_sum: float) -> float:
        return ((figures[name] or 0.0) * before + group_sum) / total

    figures.update(
        outcomes=total,
        late_rate=mean("late_rate", late),
        mean_distance_km=mean("mean_distance_km", km),
        mean_pickup_delay_min=mean("mean_pickup_delay_min", delay),
    )
