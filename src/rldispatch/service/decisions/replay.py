"""A simulated day's state as the request an integrator sends, a served round applied back to
the day, and the outcomes the day's rides report: what the parity harness
(``tests/service/test_parity.py``, ``bench/service_parity.py``) and the feedback loop's
replayed week (``tests/test_feedback_loop.py``, ``bench/feedback_loop.py``) run days with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import numpy as np

from rldispatch.domain import Scenario, travel_to_dict
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import make_baseline
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import OPEN, DaySimulator
from rldispatch.sim.stop_kernels import BREAK, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator


def _location(point: np.ndarray) -> dict[str, float]:
    return {"lat": float(point[0]), "lon": float(point[1])}


def _booking_times(sim: DaySimulator, booking: int) -> dict[str, Any]:
    now = sim.now_min
    times = {
        "requested_in_min": float(sim.requested_min[booking] - now),
        "window_opens_in_min": float(sim.earliest_min[booking] - now),
        "window_closes_in_min": float(sim.latest_min[booking] - now),
        "service_min": float(sim.service_min[booking]),
        "priority": int(sim.priority[booking]),
        "load": _load(sim, booking),
    }
    limit = sim.scenario.bookings[booking].max_ride_min
    if limit is not None:
        times["max_ride_min"] = float(limit)
    return times


def _load(sim: DaySimulator, booking: int) -> int | dict[str, int]:
    return sim.scenario.bookings[booking].load.to_json()


def _stop_plan(sim: StopDaySimulator, driver: int) -> list[dict[str, Any]]:
    """A driver's plan of stops as the request sends it."""
    now = sim.now_min
    bookings = sim.scenario.bookings
    aboard = set(sim.onboard_bookings[driver])
    plan: list[dict[str, Any]] = []
    for kind, ref in sim.stops[driver]:
        if kind == BREAK:
            plan.append(
                {
                    "kind": "break",
                    "earliest_in_min": float(sim.break_earliest_min[driver, ref] - now),
                    "latest_in_min": float(sim.break_latest_min[driver, ref] - now),
                    "duration_min": float(sim.break_duration_min[driver, ref]),
                }
            )
        elif kind == PICKUP:
            plan.append(
                {
                    "kind": "pickup",
                    "booking_id": bookings[ref].id,
                    "location": _location(sim.pickup_xy[ref]),
                    **_booking_times(sim, ref),
                }
            )
        else:
            stop = {
                "kind": "dropoff",
                "booking_id": bookings[ref].id,
                "location": _location(sim.dropoff_xy[ref]),
                "service_min": float(sim.service_min[ref]),
                "load": _load(sim, ref),
            }
            if ref in aboard:
                stop["requested_in_min"] = float(sim.requested_min[ref] - now)
                stop["picked_up_in_min"] = float(sim.picked_done_min[ref] - now)
                if bookings[ref].max_ride_min is not None:
                    stop["max_ride_min"] = float(bookings[ref].max_ride_min)
            plan.append(stop)
    return plan


def state_body(
    sim: DaySimulator, day_start_min: float, with_travel: bool = False
) -> dict[str, Any]:
    """The body of ``POST /rl/round`` for the simulator's state now (drivers and open
    bookings in the day's order; the area centre is the day's; with ``with_travel`` the
    day's travel model as the request's ``travel`` block)."""
    scenario = sim.scenario
    now = sim.now_min
    stops = isinstance(sim, StopDaySimulator)
    drivers = []
    for index, driver in enumerate(scenario.drivers):
        anchor = int(sim.anchor_booking[index])
        position = sim.dropoff_xy[anchor] if anchor >= 0 else sim.driver_start_xy[index]
        if stops:
            position = sim.anchor_xy[index]
        plan = _stop_plan(sim, index) if stops else []
        for booking in [] if stops else sim.plans[index]:
            booking_id = scenario.bookings[booking].id
            plan.append(
                {
                    "kind": "pickup",
                    "booking_id": booking_id,
                    "location": _location(sim.pickup_xy[booking]),
                    **_booking_times(sim, booking),
                }
            )
            plan.append(
                {
                    "kind": "dropoff",
                    "booking_id": booking_id,
                    "location": _location(sim.dropoff_xy[booking]),
                    "service_min": float(sim.service_min[booking]),
                    "load": _load(sim, booking),
                }
            )
        drivers.append(
            {
                "id": driver.id,
                "position": _location(position),
                "free_in_min": float(sim.anchor_min[index] - now),
                "shift_starts_in_min": float(sim.shift_start_min[index] - now),
                "shift_ends_in_min": float(sim.shift_end_min[index] - now),
                "capacity": driver.capacity.to_json(),
                "rides_today": int(sim.rides[index]),
                "plan": plan,
            }
        )
    open_bookings = [
        {
            "id": scenario.bookings[booking].id,
            "pickup": _location(sim.pickup_xy[booking]),
            "dropoff": _location(sim.dropoff_xy[booking]),
            **_booking_times(sim, booking),
        }
        for booking in np.flatnonzero(sim.status == OPEN).tolist()
    ]
    body = {
        "drivers": drivers,
        "open_bookings": open_bookings,
        "minute_of_day": float(day_start_min + now),
        "area_centre": _location(sim.frame_centre),
    }
    if stops:
        body["shared_rides"] = bool(scenario.shared_rides)
    if with_travel:
        body["travel"] = travel_to_dict(scenario.travel)
        body["travel"].pop("road_network", None)  # the service is started with its own
    return body


def mid_day_states(
    day_of: Callable[[int], Scenario],
    config: EnvConfig,
    day_start_min: float,
    rng: np.random.Generator,
    max_open_bookings: int,
) -> Iterator[tuple[DispatchEnv, dict[str, Any]]]:
    """Days ``day_of(0)``, ``day_of(1)``, ... each played with cheapest insertion up to a
    decision at a clock drawn from ``rng`` (one draw a day, uniform in 180 to 420 minutes after
    the day's start: 09:00 to 13:00), as the env there and its :func:`state_body` with the
    ``max_open_bookings`` most pressing open bookings (soonest closing window first, as a
    request holds at most so many). A day that ends before its drawn clock is skipped."""
    for index in count():
        scenario = day_of(index)
        env = DispatchEnv(preset=None, scenario=scenario, config=config)
        env.reset(options={"scenario": scenario})
        policy = make_baseline("insertion")
        stop_at = float(rng.uniform(180.0, 420.0))
        terminated = False
        while not terminated and env.sim.now_min < stop_at:
            _, _, terminated, _, _ = env.step(policy.act(env))
        if terminated:
            continue
        body = state_body(env.sim, day_start_min)
        body["open_bookings"] = sorted(
            body["open_bookings"], key=lambda b: b["window_closes_in_min"]
        )[:max_open_bookings]
        yield env, body


def action_of(env: DispatchEnv, booking_id: str, driver_id: str) -> int | None:
    """The env action giving ``booking_id`` to ``driver_id`` (None: not visible or unknown)."""
    scenario = env.sim.scenario
    drivers = [d.id for d in scenario.drivers]
    if driver_id not in drivers:
        return None
    visible_ids = [scenario.bookings[b].id for b in env.visible.tolist()]
    if booking_id not in visible_ids:
        return None
    driver = drivers.index(driver_id)
    return 1 + driver * env.config.visible_slots + visible_ids.index(booking_id)


@dataclass(frozen=True)
class ReplayedDay:
    """A day played through a served policy: its figures, how its decisions compared with
    the in-process policy's at the same states, and the bookings its rounds showed (open or
    in a driver's plan)."""

    metrics: DayMetrics
    decisions: int
    differing: int
    rounds: int
    sim: DaySimulator | None = None
    shown: frozenset[str] = frozenset()


def replay_day(
    post_round: Callable[[dict[str, Any]], dict[str, Any]],
    policy: Policy,
    scenario: Scenario,
    config: EnvConfig,
    day_start_min: float,
    with_travel: bool = False,
) -> ReplayedDay:
    """Play ``scenario`` as an integrator runs the service: whenever the day reaches a
    decision, the state goes to ``post_round`` (``POST /rl/round``; with ``with_travel``
    carrying the day's travel model) and its assignments are applied in order, then a wait
    when the round ended with one. At each applied decision ``policy`` (the in-process
    policy) is asked what it would do there."""
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset(options={"scenario": scenario})
    decisions = differing = rounds = 0
    shown: set[str] = set()
    terminated = False
    while not terminated:
        body = state_body(env.sim, day_start_min, with_travel)
        shown.update(booking["id"] for booking in body["open_bookings"])
        shown.update(
            stop["booking_id"]
            for d in body["drivers"]
            for stop in d["plan"]
            if "booking_id" in stop
        )
        answer = post_round(body)
        rounds += 1
        steps: list[tuple[str, str] | None] = [
            (a["booking_id"], a["driver_id"]) for a in answer["assignments"]
        ]
        if answer["ended"] == "wait" or not steps:
            steps.append(None)  # the round ends with a wait (or served nothing: move on)
        clock = env.sim.now_min
        for step in steps:
            expected = int(policy.act(env))
            served = 0 if step is None else action_of(env, *step)
            served = 0 if served is None else served
            decisions += 1
            differing += served != expected
            _, _, terminated, _, _ = env.step(served)
            if terminated or env.sim.now_min != clock:
                break  # the clock moved: the next decision is a new round's
    return ReplayedDay(env.metrics(), decisions, differing, rounds, env.sim, frozenset(shown))


def dated(scenario: Scenario, service_date: date) -> Scenario:
    """The day with its booking ids made unique to ``service_date`` (the service keeps one
    outcome per booking id, so the days of a replayed week must not share ids)."""
    return replace(
        scenario,
        name=f"{scenario.name}-{service_date}",
        bookings=tuple(replace(b, id=f"{service_date}-{b.id}") for b in scenario.bookings),
    )


def outcome_bodies(
    sim: DaySimulator, service_date: date, day_start_min: float
) -> list[dict[str, Any]]:
    """The ``POST /rl/outcome`` body of each booking a played day served: its driver, its
    requested and real pickup times on ``service_date`` (UTC) and the km driven for it (from
    where the driver was to the pickup, then the ride)."""
    start = datetime(service_date.year, service_date.month, service_date.day, tzinfo=UTC)
    start += timedelta(minutes=day_start_min)
    scenario = sim.scenario
    bodies = []
    for driver, route in enumerate(sim.served_routes()):
        where = sim.driver_start_vec[driver]
        for booking in route:
            approach = float(sim.travel.distance_km(where, sim.pickup_vec[booking]))
            bodies.append(
                {
                    "booking_id": scenario.bookings[booking].id,
                    "driver_id": scenario.drivers[driver].id,
                    "requested_pickup_at": (
                        start + timedelta(minutes=float(sim.requested_min[booking]))
                    ).isoformat(),
                    "picked_up_at": (
                        start + timedelta(minutes=float(sim.pickup_min[booking]))
                    ).isoformat(),
                    "distance_km": round(approach + float(sim.ride_km[booking]), 3),
                }
            )
            where = sim.dropoff_vec[booking]
    return sorted(bodies, key=lambda body: (body["picked_up_at"], body["booking_id"]))


def replay_days_through(
    url: str,
    token: str,
    days: dict[date, Scenario],
    policy: Policy,
    config: EnvConfig,
    day_start_min: float,
    timeout_s: float = 60.0,
) -> dict[date, ReplayedDay]:
    """Operate each day through a running service at ``url`` as an integrator would: every
    decision a ``POST /rl/round`` naming the day's ``service_date``, then each served ride's
    ``POST /rl/outcome``. ``policy`` is the in-process policy the answers are compared with.

    :raises RuntimeError: the service refused a round or an outcome (its answer is quoted).
    """
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    replayed = {}
    with httpx.Client(base_url=url, timeout=timeout_s, headers=headers) as client:
        for service_date, scenario in days.items():

            def post_round(body: dict[str, Any], when: date = service_date) -> dict[str, Any]:
                answer = client.post("/rl/round", json={**body, "service_date": when.isoformat()})
                if answer.status_code != 200:
                    raise RuntimeError(f"/rl/round: {answer.status_code} {answer.text}")
                return answer.json()

            day = replay_day(post_round, policy, scenario, config, day_start_min)
            assert day.sim is not None
            for body in outcome_bodies(day.sim, service_date, day_start_min):
                answer = client.post("/rl/outcome", json=body)
                if answer.status_code != 202:
                    raise RuntimeError(f"/rl/outcome: {answer.status_code} {answer.text}")
            replayed[service_date] = day
    return replayed
