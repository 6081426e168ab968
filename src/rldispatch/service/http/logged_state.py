"""The latest state of the decision log, for the dispatcher's page of a worker that did not
answer it (``serve --workers N``, or several instances on one database).

The newest row of ``rl_suggestions`` holds the whole state of its request: a ``/rl/suggest``'s
as the request itself, a ``/rl/round``'s by the key of its state in ``rl_round_states``
(:mod:`rldispatch.service.log.round_states`). The other rows of the same round
are the run of rows logged just before it with the same answer's figures (source, reason,
model version and latency: a round's rows share its answer's) within :data:`SAME_ROUND_S`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.http.fleet_schemas import RoundRequest, SuggestRequest
from rldispatch.service.http.live_view import SeenState, onboard_stops
from rldispatch.service.log.round_states import STATE_KEY, resolve_round_request, suggestion_body
from rldispatch.service.log.tables import NOTHING_ASSIGNED, round_states, suggestions

SAME_ROUND_S = 0.25
MAX_ROUND_ROWS = 1000


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def newest_row(engine: Engine) -> tuple[int, datetime] | None:
    """The id and time of the newest row of the log (None: empty).

    :raises SQLAlchemyError: when the database does not answer.
    """
    with engine.connect() as connection:
        row = connection.execute(
            select(suggestions.c.id, suggestions.c.created_at)
            .order_by(suggestions.c.id.desc())
            .limit(1)
        ).first()
    return None if row is None else (int(row.id), _aware(row.created_at))


def _minute_of_day(moment: datetime) -> float:
    local = moment.astimezone()
    return local.hour * 60.0 + local.minute + local.second / 60.0


def logged_state(engine: Engine, row_id: int, day: LiveDay, sequence: int) -> SeenState | None:
    """The state of the log's row ``row_id`` and its round's placements, as this worker's
    page shows a state it answered (None: the row holds no state it can read).

    :raises SQLAlchemyError: when the database does not answer.
    """
    with engine.connect() as connection:
        newest = connection.execute(select(suggestions).where(suggestions.c.id == row_id)).first()
        if newest is None:
            return None
        at = _aware(newest.created_at)
        rows = connection.execute(
            select(
                suggestions.c.booking_id,
                suggestions.c.driver_id,
                suggestions.c.source,
                suggestions.c.reason,
                suggestions.c.model_version,
                suggestions.c.latency_ms,
            )
            .where(
                suggestions.c.id <= row_id,
                suggestions.c.id > row_id - MAX_ROUND_ROWS,
                suggestions.c.created_at >= at - timedelta(seconds=SAME_ROUND_S),
            )
            .order_by(suggestions.c.id.desc())
        ).all()
        request: Any = newest.request
        summary = request.get("round") if isinstance(request, dict) else None
        if isinstance(summary, dict) and STATE_KEY in summary:
            key = summary[STATE_KEY]
            text = connection.execute(
                select(round_states.c.state).where(round_states.c.state_key == key)
            ).scalar()
            try:
                request = resolve_round_request(request, {} if text is None else {key: text})
            except (KeyError, ValueError):  # pruned, or not a state this service wrote
                return None
    answer = (newest.source, newest.reason, newest.model_version, newest.latency_ms)
    run = []
    for row in rows:  # newest first: the run of the same answer's rows
        if (row.source, row.reason, row.model_version, row.latency_ms) != answer:
            break
        run.append(row)
    run.reverse()
    if not isinstance(request, dict):
        return None
    kind = "round" if "round" in request else "suggest"
    default_minute = _minute_of_day(at)
    try:
        if kind == "round":
            body = RoundRequest.model_validate(request["state"])
            state = body.to_state(default_minute, day)
            asked = None
        else:
            body = SuggestRequest.model_validate(suggestion_body(request))
            live = body.to_live(default_minute, day)
            state = live.state.with_booking_first(live.booking)
            asked = live.booking.id
    except (ValueError, KeyError, TypeError):  # a row of an older or foreign shape
        return None
    placed = tuple(
        (row.booking_id, row.driver_id)
        for row in run
        if row.booking_id != NOTHING_ASSIGNED and row.driver_id is not None
    )
    if kind == "suggest":
        placed = placed[-1:] if placed and placed[-1][0] == asked else ()
    response = newest.response if isinstance(newest.response, dict) else {}
    return SeenState(
        at=at,
        kind=kind,
        state=state,
        placed=placed,
        onboard=onboard_stops(body),
        asked_booking_id=asked,
        source=newest.source,
        reason=newest.reason,
        model_version=newest.model_version,
        latency_ms=float(newest.latency_ms),
        ended=response.get("ended"),
        sequence=sequence,
    )


def logged_decisions(engine: Engine, after: datetime | None, limit: int) -> list[dict[str, Any]]:
    """The log's newest rows logged after ``after`` (None: any), newest first, as the page's
    decisions (whether they were a round's or a suggestion's, and looked ahead, is not in
    these columns: ``kind`` is ``logged``).

    :raises SQLAlchemyError: when the database does not answer.
    """
    query = (
        select(
            suggestions.c.created_at,
            suggestions.c.booking_id,
            suggestions.c.driver_id,
            suggestions.c.source,
            suggestions.c.reason,
            suggestions.c.model_version,
            suggestions.c.arm,
            suggestions.c.latency_ms,
            suggestions.c.shadow_driver_id,
        )
        .order_by(suggestions.c.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(suggestions.c.created_at > after)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "at": _aware(row.created_at).isoformat(),
            "kind": "logged",
            "booking_id": None if row.booking_id == NOTHING_ASSIGNED else row.booking_id,
            "driver_id": row.driver_id,
            "source": row.source,
            "reason": row.reason,
            "model_version": row.model_version,
            "arm": row.arm,
            "latency_ms": round(float(row.latency_ms), 2),
            "lookahead": None,
            "late": None,
            "pickup_in_min": None,
            "shadow_driver_id": row.shadow_driver_id,
        }
        for row in rows
    ]
