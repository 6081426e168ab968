"""Independent checks of hindsight plans, in exact floating-point arithmetic: a Cordeau
dial-a-ride solution, and a scenario plan under the simulator's rules (at the end).

It recomputes everything from the instance and the routes alone (it shares no code with the
solver): each route is a vehicle's ordered stops, each stop names its request (``"1"`` to
``"n"``), its kind (``"pickup"`` or ``"dropoff"``) and the minute its service starts. The
vehicle leaves the depot as late as the first stop allows and returns as early as the last
one allows; waiting before a stop is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.scenarios.cordeau import CordeauInstance

TOLERANCE_MIN = 1e-6
"""Slack allowed on every time comparison (the solver's times are exact up to rounding)."""


class StopLike(Protocol):
    booking: str
    kind: str
    time_min: float


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _stop_xy(instance: CordeauInstance, request: int, kind: str) -> np.ndarray:
    return instance.pickup_xy[request] if kind == "pickup" else instance.dropoff_xy[request]


def cordeau_cost(instance: CordeauInstance, routes: Sequence[Sequence[StopLike]]) -> float:
    """Total Euclidean distance of the routes, each from the depot and back to it."""
    depot = np.asarray(instance.depot_xy, dtype=np.float64)
    total = 0.0
    for route in routes:
        if not route:
            continue
        here = depot
        for stop in route:
            point = _stop_xy(instance, int(stop.booking) - 1, stop.kind)
            total += _distance(here, point)
            here = point
        total += _distance(here, depot)
    return total


def check_cordeau_solution(
    instance: CordeauInstance,
    routes: Sequence[Sequence[StopLike]],
    claimed_cost: float | None = None,
) -> list[str]:
    """Every rule of the static dial-a-ride problem the routes break; empty when valid.

    Checks: each request picked up and dropped off exactly once by one vehicle, pickup
    first; every service start inside its window and reachable from the previous stop;
    load within capacity; ride time (end of pickup service to start of drop-off service)
    within the maximum; route duration and depot windows; the number of vehicles; and, when
    ``claimed_cost`` is given, that it matches the recomputed total distance.
    """
    problems: list[str] = []
    n = instance.n_requests
    tol = TOLERANCE_MIN
    used = [route for route in routes if route]
    if len(used) > instance.n_vehicles:
        problems.append(f"{len(used)} vehicles used, only {instance.n_vehicles} available")
    pickup_route = [-1] * n
    dropoff_route = [-1] * n
    pickup_time = [0.0] * n
    depot = np.asarray(instance.depot_xy, dtype=np.float64)
    for r, route in enumerate(routes):
        if not route:
            continue
        load = 0
        here, ready_min = depot, None
        for position, stop in enumerate(route):
            where = f"route {r} stop {position}"
            try:
                request = int(stop.booking) - 1
            except (TypeError, ValueError):
                problems.append(f"{where}: unknown request {stop.booking!r}")
                return problems
            if not 0 <= request < n:
                problems.append(f"{where}: unknown request {stop.booking!r}")
                return problems
            if stop.kind not in ("pickup", "dropoff"):
                problems.append(f"{where}: kind must be pickup or dropoff, got {stop.kind!r}")
                return problems
            label = f"{where} ({stop.kind} of request {stop.booking})"
            point = _stop_xy(instance, request, stop.kind)
            time_min = float(stop.time_min)
            if ready_min is not None:
                arrival = ready_min + _distance(here, point)
                if time_min < arrival - tol:
                    problems.append(
                        f"{label}: starts at {time_min:.4f}, but the vehicle arrives "
                        f"at {arrival:.4f}"
                    )
            if stop.kind == "pickup":
                window = instance.pickup_window[request]
                service = float(instance.pickup_service[request])
                if pickup_route[request] != -1:
                    problems.append(f"{label}: request picked up twice")
                pickup_route[request] = r
                pickup_time[request] = time_min
                load += int(instance.load[request])
            else:
                window = instance.dropoff_window[request]
                service = float(instance.dropoff_service[request])
                if dropoff_route[request] != -1:
                    problems.append(f"{label}: request dropped off twice")
                dropoff_route[request] = r
                if pickup_route[request] != r:
                    problems.append(f"{label}: not picked up earlier on the same route")
                else:
                    ride = time_min - (
                        pickup_time[request] + float(instance.pickup_service[request])
                    )
                    if ride > instance.max_ride_time + tol:
                        problems.append(
                            f"{label}: ride time {ride:.4f} exceeds {instance.max_ride_time}"
                        )
                load -= int(instance.load[request])
            if time_min < window[0] - tol or time_min > window[1] + tol:
                problems.append(
                    f"{label}: starts at {time_min:.4f}, outside its window "
                    f"[{window[0]:g}, {window[1]:g}]"
                )
            if load > instance.capacity:
                problems.append(f"{label}: load {load} exceeds capacity {instance.capacity}")
            here, ready_min = point, time_min + service
        first = route[0]
        first_xy = _stop_xy(instance, int(first.booking) - 1, first.kind)
        depart_min = float(first.time_min) - _distance(depot, first_xy)
        return_min = ready_min + _distance(here, depot)
        if depart_min < instance.depot_window[0] - tol:
            problems.append(f"route {r}: leaves the depot at {depart_min:.4f}, before it opens")
        if return_min > instance.end_depot_window[1] + tol:
            problems.append(f"route {r}: returns to the depot at {return_min:.4f}, after it closes")
        duration = return_min - depart_min
        if duration > instance.max_route_duration + tol:
            problems.append(
                f"route {r}: lasts {duration:.4f}, more than {instance.max_route_duration}"
            )
    for request in range(n):
        if pickup_route[request] == -1:
            problems.append(f"request {request + 1}: never picked up")
        if dropoff_route[request] == -1:
            problems.append(f"request {request + 1}: never dropped off")
    if claimed_cost is not None:
        cost = cordeau_cost(instance, routes)
        if abs(cost - claimed_cost) > 1e-6 * max(1.0, abs(cost)):
            problems.append(f"claimed cost {claimed_cost:.6f}, recomputed {cost:.6f}")
    return problems


# --- scenario plans (the simulator's rules) ----------------------------------------------------

EARTH_RADIUS_KM = 6371.0088


def _pace_km(scenario: Scenario, a: Sequence[float], b: Sequence[float]) -> float:
    """The km that set a leg's time: haversine distance times the detour (``latlon``),
    Euclidean distance (``xy``), or on a road network the km the free-flow speed covers in
    the fastest route's free-flow minutes (read from the network itself)."""
    road_network = scenario.travel.road_network
    if road_network is not None:
        from rldispatch.sim.road_network import load_road_network

        network = load_road_network(road_network)
        origin, destination = network.snap(np.asarray([a, b], dtype=np.float64))
        minutes, _ = network.route(int(origin), int(destination))
        # In float32, as the travel model's tables hold it.
        return float(np.float32(minutes) * np.float32(scenario.travel.speed_kmh / 60.0))
    if scenario.coords == "xy":
        return math.hypot(a[0] - b[0], a[1] - b[1])
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))) * scenario.travel.detour


def _minutes_per_km(scenario: Scenario, requested_min: float) -> float:
    travel = scenario.travel
    hour = int(math.floor(travel.start_hour + requested_min / 60.0)) % 24
    return 60.0 / (travel.speed_kmh * travel.hourly_speed_factor[hour])


def check_scenario_plan(
    scenario: Scenario,
    routes: Sequence[Sequence[StopLike]],
    travel_factor: Sequence[float] | None = None,
) -> list[str]:
    """Every simulator rule the routes (one per driver, in scenario order) break; empty when
    valid.

    Checks: each booking served at most once; a driver carries one booking at a time (each
    pickup directly followed by its drop-off); each driver starts at its start point no
    earlier than its shift; every pickup inside its window and reachable from where the
    driver was (a leg and a ride at the speed of the booking's requested hour); each
    drop-off after the ride; the last drop-off done by the end of the shift; the load
    within the capacity. ``travel_factor`` (a realised day): per booking, how many times its
    planned minutes the drive to it and its ride took.
    """
    problems: list[str] = []
    bookings = {booking.id: booking for booking in scenario.bookings}
    factor_of = {
        booking.id: 1.0 if travel_factor is None else float(travel_factor[index])
        for index, booking in enumerate(scenario.bookings)
    }
    if len(routes) != len(scenario.drivers):
        return [f"{len(routes)} routes for {len(scenario.drivers)} drivers"]
    seen: set[str] = set()
    tol = TOLERANCE_MIN
    for driver, route in zip(scenario.drivers, routes, strict=True):
        here, ready_min = driver.start, driver.shift[0]
        if len(route) % 2:
            problems.append(f"driver {driver.id}: a pickup without its drop-off")
            continue
        for pickup, dropoff in zip(route[::2], route[1::2], strict=True):
            where = f"driver {driver.id}, booking {pickup.booking}"
            booking = bookings.get(pickup.booking)
            if booking is None or pickup.kind != "pickup" or dropoff.kind != "dropoff":
                problems.append(f"{where}: not a pickup followed by its drop-off")
                break
            if dropoff.booking != pickup.booking:
                problems.append(f"{where}: picked up, then another booking dropped off")
                break
            if booking.id in seen:
                problems.append(f"{where}: served twice")
            seen.add(booking.id)
            pace = _minutes_per_km(scenario, booking.requested_min) * factor_of[booking.id]
            arrival = ready_min + _pace_km(scenario, here, booking.pickup) * pace
            if pickup.time_min < arrival - tol:
                problems.append(
                    f"{where}: picked up at {pickup.time_min:.4f}, arrives {arrival:.4f}"
                )
            low, high = booking.window
            if not low - tol <= pickup.time_min <= high + tol:
                problems.append(
                    f"{where}: pickup {pickup.time_min:.4f} outside [{low:g}, {high:g}]"
                )
            ride = _pace_km(scenario, booking.pickup, booking.dropoff) * pace
            if dropoff.time_min < pickup.time_min + booking.service_min + ride - tol:
                problems.append(f"{where}: dropped off before the ride is over")
            if not booking.load.fits_in(driver.capacity):
                problems.append(
                    f"{where}: load {booking.load.to_json()} does not fit "
                    f"capacity {driver.capacity.to_json()}"
                )
            here, ready_min = booking.dropoff, dropoff.time_min + booking.service_min
        if route and ready_min > driver.shift[1] + tol:
            problems.append(f"driver {driver.id}: works until {ready_min:.4f}, after its shift")
    return problems
