"""The fleet as the dispatcher's page draws it: the latest state the service was sent, with its
answer applied, as positions, plans of stops with their estimated times, and open bookings,
late and at-risk pickups flagged.

The state is restored in the simulator
(:func:`rldispatch.service.decisions.snapshot.live_env`, as the manager plays it) and the
answer's assignments are made there in order, so each stop's time is the simulator's estimate,
the one the policy decided on.

=================  ============================================================================
flag               when
=================  ============================================================================
``late``           a planned pickup more than 5 minutes after its requested time; an open
                   booking whose requested time is more than 5 minutes past
``at_risk``        a planned pickup after its requested time, within the 5 minutes' grace; an
                   open booking whose window closes within 15 minutes
=================  ============================================================================
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Places
from rldispatch.env import EnvConfig
from rldispatch.service.decisions.snapshot import MINUTES_PER_DAY, LiveDay, live_env
from rldispatch.service.http.live_view import SeenState
from rldispatch.sim.simulator import OPEN, DaySimulator
from rldispatch.sim.stop_kernels import DROPOFF, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator

AT_RISK_OPEN_MIN = 15.0
"""An open booking whose window closes within this many minutes is at risk."""


def _point(xy: np.ndarray) -> list[float]:
    return [round(float(xy[0]), 6), round(float(xy[1]), 6)]


def _minutes(value: float) -> float | None:
    return round(float(value), 1) if np.isfinite(value) else None


def clock(minute_of_day: float) -> str:
    """``HH:MM`` of a minute of the day (wrapping past midnight)."""
    minute = int(round(minute_of_day)) % int(MINUTES_PER_DAY)
    return f"{minute // 60:02d}:{minute % 60:02d}"


def pickup_flags(eta_min: float, requested_min: float) -> tuple[bool, bool]:
    """``(late, at_risk)`` of a pickup planned at ``eta_min`` for ``requested_min``."""
    behind = eta_min - requested_min
    return bool(behind > LATE_AFTER_REQUESTED_MIN), bool(0.0 < behind <= LATE_AFTER_REQUESTED_MIN)


def fleet_view(seen: SeenState, day: LiveDay, config: EnvConfig) -> dict[str, Any]:
    """The page's fleet of ``seen``: drivers (position, plan of stops), open bookings, the
    answer's placements and the counts of late and at-risk pickups.

    :param config: the env config to restore the state with (its driver slots are widened
        to the fleet; every open booking is offered, so each placement can be made).
    """
    state = seen.state
    config = replace(
        config,
        max_drivers=max(len(state.drivers), 1),
        lookahead_min=2 * MINUTES_PER_DAY,
    )
    live = live_env(state, day, config)
    sim = live.env.sim
    now = sim.now_min
    driver_index = {identifier: k for k, identifier in enumerate(live.driver_ids)}
    booking_index = {identifier: k for k, identifier in enumerate(live.booking_ids)}
    placed_now: set[str] = set()
    unplaced: list[str] = []
    for booking_id, driver_id in seen.placed:
        try:
            sim.assign(driver_index[driver_id], booking_index[booking_id])
            placed_now.add(booking_id)
        except (KeyError, ValueError):  # not in the state, or no longer feasible here
            unplaced.append(booking_id)

    drivers = []
    late = at_risk = planned = 0
    for d, live_driver in enumerate(state.drivers):
        stops: list[dict[str, Any]] = []
        committed = () if state.plans_of_stops else seen.onboard.get(live_driver.id, ())
        for booking_id, lat, lon, done_in_min in committed:
            stops.append(
                {
                    "kind": "dropoff",
                    "booking_id": booking_id,
                    "at": [lat, lon],
                    "eta_in_min": None if done_in_min is None else round(done_in_min, 1),
                    "onboard": True,
                }
            )
        if isinstance(sim, StopDaySimulator):
            counts = _stop_entries(sim, d, live.booking_ids, placed_now, stops)
        else:
            counts = _booking_entries(sim, d, live.booking_ids, placed_now, stops)
        late += counts[0]
        at_risk += counts[1]
        planned += counts[2]
        drivers.append(
            {
                "id": live_driver.id,
                "position": [round(live_driver.start[0], 6), round(live_driver.start[1], 6)],
                "free_in_min": round(live_driver.free_in_min, 1),
                "shift_starts_in_min": round(live_driver.shift[0], 1),
                "shift_ends_in_min": round(live_driver.shift[1], 1),
                "on_shift": bool(live_driver.shift[0] <= 0.0 < live_driver.shift[1]),
                "rides_today": live_driver.rides_today,
                "capacity": places_json(live_driver.capacity),
                "stops": stops,
            }
        )
    open_bookings = []
    for booking in np.flatnonzero(sim.status == OPEN).tolist():
        requested = float(sim.requested_min[booking])
        closes = float(sim.latest_min[booking])
        is_late = now > requested + LATE_AFTER_REQUESTED_MIN
        is_at_risk = not is_late and closes - now <= AT_RISK_OPEN_MIN
        late += is_late
        at_risk += is_at_risk
        open_bookings.append(
            {
                "id": live.booking_ids[booking],
                "pickup": _point(sim.pickup_xy[booking]),
                "dropoff": _point(sim.dropoff_xy[booking]),
                "requested_in_min": _minutes(requested - now),
                "window_closes_in_min": _minutes(closes - now),
                "priority": int(sim.priority[booking]),
                "asked": live.booking_ids[booking] == seen.asked_booking_id,
                "late": bool(is_late),
                "at_risk": bool(is_at_risk),
            }
        )
    return {
        "sequence": seen.sequence,
        "received_at": seen.at.isoformat(),
        "kind": seen.kind,
        "minute_of_day": round(state.minute_of_day, 2),
        "clock": clock(state.minute_of_day),
        "answer": {
            "source": seen.source,
            "reason": seen.reason,
            "model_version": seen.model_version,
            "latency_ms": round(seen.latency_ms, 2),
            "ended": seen.ended,
            "placed": [{"booking_id": b, "driver_id": d} for b, d in seen.placed],
            "not_drawn": unplaced,
        },
        "drivers": drivers,
        "open_bookings": open_bookings,
        "counts": {
            "drivers": len(drivers),
            "drivers_with_plan": sum(1 for d in drivers if d["stops"]),
            "planned_pickups": planned,
            "open_bookings": len(open_bookings),
            "late": int(late),
            "at_risk": int(at_risk),
        },
    }


def places_json(capacity: Places | int) -> int | dict[str, int]:
    """A driver's places as the API writes them: an integer when all are seated."""
    return capacity.to_json() if isinstance(capacity, Places) else int(capacity)


def _pickup_entry(
    sim: DaySimulator, booking: int, identifier: str, eta: float, new: bool
) -> tuple[dict[str, Any], bool, bool]:
    now = sim.now_min
    requested = float(sim.requested_min[booking])
    is_late, is_at_risk = pickup_flags(eta, requested)
    entry = {
        "kind": "pickup",
        "booking_id": identifier,
        "new": new,
        "at": _point(sim.pickup_xy[booking]),
        "eta_in_min": _minutes(eta - now),
        "requested_in_min": _minutes(requested - now),
        "late_by_min": _minutes(max(eta - requested, 0.0)),
        "late": is_late,
        "at_risk": is_at_risk,
        "priority": int(sim.priority[booking]),
    }
    return entry, is_late, is_at_risk


def _booking_entries(
    sim: DaySimulator,
    d: int,
    ids: tuple[str, ...],
    placed_now: set[str],
    stops: list[dict[str, Any]],
) -> tuple[int, int, int]:
    """A plan of whole bookings' stops: each pickup, then its drop-off; (late, at risk,
    planned) pickups."""
    late = at_risk = 0
    now = sim.now_min
    for k, booking in enumerate(sim.plans[d]):
        identifier = ids[booking]
        entry, is_late, is_at_risk = _pickup_entry(
            sim, booking, identifier, float(sim.plan_start[d][k]), identifier in placed_now
        )
        late += is_late
        at_risk += is_at_risk
        stops.append(entry)
        stops.append(
            {
                "kind": "dropoff",
                "booking_id": identifier,
                "new": identifier in placed_now,
                "at": _point(sim.dropoff_xy[booking]),
                "eta_in_min": _minutes(float(sim.plan_complete[d][k]) - now),
            }
        )
    return late, at_risk, len(sim.plans[d])


def _stop_entries(
    sim: StopDaySimulator,
    d: int,
    ids: tuple[str, ...],
    placed_now: set[str],
    stops: list[dict[str, Any]],
) -> tuple[int, int, int]:
    """A plan of stops' pickups and drop-offs in order (breaks are not drawn); (late, at
    risk, planned) pickups."""
    late = at_risk = planned = 0
    now = sim.now_min
    aboard = set(sim.onboard_bookings[d])
    for (kind, ref), start in zip(sim.stops[d], sim.stop_start[d].tolist(), strict=True):
        if kind == PICKUP:
            entry, is_late, is_at_risk = _pickup_entry(
                sim, ref, ids[ref], start, ids[ref] in placed_now
            )
            late += is_late
            at_risk += is_at_risk
            planned += 1
            stops.append(entry)
        elif kind == DROPOFF:
            entry = {
                "kind": "dropoff",
                "booking_id": ids[ref],
                "new": ids[ref] in placed_now,
                "at": _point(sim.dropoff_xy[ref]),
                "eta_in_min": _minutes(start - now),
            }
            if ref in aboard:
                entry["onboard"] = True
            stops.append(entry)
    return late, at_risk, planned
