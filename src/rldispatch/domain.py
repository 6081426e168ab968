"""Bookings, drivers and scenarios: plain, validated data.

Times are minutes from the start of the service day. Locations are ``(lat, lon)`` pairs when a
scenario's ``coords`` is ``"latlon"`` and ``(x, y)`` pairs when it is ``"xy"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Coords = Literal["latlon", "xy"]
LATE_AFTER_REQUESTED_MIN = 5.0
"""A pickup more than this many minutes after the requested time counts as late."""


class ScenarioError(ValueError):
    """A scenario that breaks the format; the message names the field and the record."""


@dataclass(frozen=True)
class Booking:
    id: str
    release_min: float
    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    requested_min: float
    window: tuple[float, float]
    service_min: float = 2.0
    priority: int = 0
    load: int = 1

    @property
    def earliest_min(self) -> float:
        return self.window[0]

    @property
    def latest_min(self) -> float:
        return self.window[1]


@dataclass(frozen=True)
class Driver:
    id: str
    start: tuple[float, float]
    shift: tuple[float, float]
    capacity: int = 1


@dataclass(frozen=True)
class TravelConfig:
    """How fast vehicles move.

    ``speed_kmh`` is the free-flow speed, ``detour`` multiplies straight-line distance into road
    distance, ``start_hour`` is the clock hour at minute 0, and ``hourly_speed_factor`` scales
    the speed by hour of day (24 values; rush hours below 1). For ``xy`` scenarios one
    coordinate unit counts as one km.
    """

    speed_kmh: float = 28.0
    detour: float = 1.3
    start_hour: float = 6.0
    hourly_speed_factor: tuple[float, ...] = (1.0,) * 24


@dataclass(frozen=True)
class Scenario:
    name: str
    coords: Coords
    horizon_min: float
    drivers: tuple[Driver, ...]
    bookings: tuple[Booking, ...]
    travel: TravelConfig = field(default_factory=TravelConfig)

    def __post_init__(self) -> None:
        validate_scenario(self)


def _require_finite(value: float, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ScenarioError(f"{where}: must be a finite number, got {value!r}")


def _check_location(point: tuple[float, float], coords: Coords, where: str) -> None:
    if len(point) != 2:
        raise ScenarioError(f"{where}: must be a pair of numbers, got {point!r}")
    _require_finite(point[0], f"{where}[0]")
    _require_finite(point[1], f"{where}[1]")
    if coords == "latlon":
        if not -90.0 <= point[0] <= 90.0:
            raise ScenarioError(f"{where}: latitude {point[0]} is outside [-90, 90]")
        if not -180.0 <= point[1] <= 180.0:
            raise ScenarioError(f"{where}: longitude {point[1]} is outside [-180, 180]")


def validate_scenario(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` naming the first field that breaks the format."""
    if scenario.coords not in ("latlon", "xy"):
        raise ScenarioError(f"coords: must be 'latlon' or 'xy', got {scenario.coords!r}")
    _require_finite(scenario.horizon_min, "horizon_min")
    if scenario.horizon_min <= 0:
        raise ScenarioError(f"horizon_min: must be positive, got {scenario.horizon_min}")
    travel = scenario.travel
    _require_finite(travel.speed_kmh, "travel.speed_kmh")
    if travel.speed_kmh <= 0:
        raise ScenarioError(f"travel.speed_kmh: must be positive, got {travel.speed_kmh}")
    _require_finite(travel.detour, "travel.detour")
    if travel.detour < 1.0:
        raise ScenarioError(f"travel.detour: must be at least 1, got {travel.detour}")
    _require_finite(travel.start_hour, "travel.start_hour")
    if len(travel.hourly_speed_factor) != 24:
        raise ScenarioError("travel.hourly_speed_factor: needs 24 values, one per hour")
    for hour, factor in enumerate(travel.hourly_speed_factor):
        _require_finite(factor, f"travel.hourly_speed_factor[{hour}]")
        if factor <= 0:
            raise ScenarioError(f"travel.hourly_speed_factor[{hour}]: must be positive")
    if not scenario.drivers:
        raise ScenarioError("drivers: the fleet is empty; a scenario needs at least one driver")
    seen: set[str] = set()
    for driver in scenario.drivers:
        where = f"driver {driver.id!r}"
        if not driver.id:
            raise ScenarioError("drivers[].id: must be a non-empty string")
        if driver.id in seen:
            raise ScenarioError(f"{where}: id is used twice")
        seen.add(driver.id)
        _check_location(driver.start, scenario.coords, f"{where}: start")
        _require_finite(driver.shift[0], f"{where}: shift[0]")
        _require_finite(driver.shift[1], f"{where}: shift[1]")
        if driver.shift[1] <= driver.shift[0]:
            raise ScenarioError(f"{where}: shift ends ({driver.shift[1]}) before it starts")
        if not isinstance(driver.capacity, int) or driver.capacity < 1:
            raise ScenarioError(f"{where}: capacity must be a positive integer")
    seen = set()
    for booking in scenario.bookings:
        where = f"booking {booking.id!r}"
        if not booking.id:
            raise ScenarioError("bookings[].id: must be a non-empty string")
        if booking.id in seen:
            raise ScenarioError(f"{where}: id is used twice")
        seen.add(booking.id)
        _check_location(booking.pickup, scenario.coords, f"{where}: pickup")
        _check_location(booking.dropoff, scenario.coords, f"{where}: dropoff")
        for name in ("release_min", "requested_min", "service_min"):
            _require_finite(getattr(booking, name), f"{where}: {name}")
        _require_finite(booking.window[0], f"{where}: window[0]")
        _require_finite(booking.window[1], f"{where}: window[1]")
        if booking.window[1] < booking.window[0]:
            raise ScenarioError(
                f"{where}: window ends ({booking.window[1]}) before it starts ({booking.window[0]})"
            )
        if booking.release_min < 0:
            raise ScenarioError(f"{where}: release_min must not be negative")
        if booking.release_min > booking.window[1]:
            raise ScenarioError(f"{where}: release_min is after the window closes")
        if booking.service_min < 0:
            raise ScenarioError(f"{where}: service_min must not be negative")
        if booking.priority not in (0, 1):
            raise ScenarioError(f"{where}: priority must be 0 (normal) or 1 (urgent)")
        if not isinstance(booking.load, int) or booking.load < 1:
            raise ScenarioError(f"{where}: load must be a positive integer")


# --- JSON form -------------------------------------------------------------------------------


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if not isinstance(record, dict):
        raise ScenarioError(f"{where}: must be an object")
    if name not in record:
        raise ScenarioError(f"{where}: missing field '{name}'")
    return record[name]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ScenarioError(f"{where}: must be an integer, got {value!r}")
    return int(value)


def _pair(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ScenarioError(f"{where}: must be a list of two numbers, got {value!r}")
    return (_number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]"))


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a scenario from its JSON form (see DESIGN.md), validating every field."""
    if not isinstance(data, dict):
        raise ScenarioError("scenario: the file must hold a JSON object")
    coords = _field(data, "coords", "scenario")
    if coords not in ("latlon", "xy"):
        raise ScenarioError(f"coords: must be 'latlon' or 'xy', got {coords!r}")
    travel_data = data.get("travel", {})
    if not isinstance(travel_data, dict):
        raise ScenarioError("travel: must be an object")
    defaults = TravelConfig()
    factors = travel_data.get("hourly_speed_factor", defaults.hourly_speed_factor)
    if not isinstance(factors, (list, tuple)):
        raise ScenarioError("travel.hourly_speed_factor: must be a list of 24 numbers")
    travel = TravelConfig(
        speed_kmh=_number(travel_data.get("speed_kmh", defaults.speed_kmh), "travel.speed_kmh"),
        detour=_number(travel_data.get("detour", defaults.detour), "travel.detour"),
        start_hour=_number(travel_data.get("start_hour", defaults.start_hour), "travel.start_hour"),
        hourly_speed_factor=tuple(
            _number(v, f"travel.hourly_speed_factor[{i}]") for i, v in enumerate(factors)
        ),
    )
    drivers_data = _field(data, "drivers", "scenario")
    if not isinstance(drivers_data, list):
        raise ScenarioError("drivers: must be a list")
    drivers = []
    for index, record in enumerate(drivers_data):
        where = f"drivers[{index}]"
        driver_id = str(_field(record, "id", where))
        where = f"driver {driver_id!r}"
        if "start" in record:
            start = _pair(record["start"], f"{where}: start")
        else:
            lat_name, lon_name = ("lat", "lon") if coords == "latlon" else ("x", "y")
            start = (
                _number(_field(record, lat_name, where), f"{where}: {lat_name}"),
                _number(_field(record, lon_name, where), f"{where}: {lon_name}"),
            )
        drivers.append(
            Driver(
                id=driver_id,
                start=start,
                shift=_pair(_field(record, "shift", where), f"{where}: shift"),
                capacity=_integer(record.get("capacity", 1), f"{where}: capacity"),
            )
        )
    bookings_data = _field(data, "bookings", "scenario")
    if not isinstance(bookings_data, list):
        raise ScenarioError("bookings: must be a list")
    bookings = []
    for index, record in enumerate(bookings_data):
        where = f"bookings[{index}]"
        booking_id = str(_field(record, "id", where))
        where = f"booking {booking_id!r}"
        bookings.append(
            Booking(
                id=booking_id,
                release_min=_number(_field(record, "release_min", where), f"{where}: release_min"),
                pickup=_pair(_field(record, "pickup", where), f"{where}: pickup"),
                dropoff=_pair(_field(record, "dropoff", where), f"{where}: dropoff"),
                requested_min=_number(
                    _field(record, "requested_min", where), f"{where}: requested_min"
                ),
                window=_pair(_field(record, "window", where), f"{where}: window"),
                service_min=_number(record.get("service_min", 2.0), f"{where}: service_min"),
                priority=_integer(record.get("priority", 0), f"{where}: priority"),
                load=_integer(record.get("load", 1), f"{where}: load"),
            )
        )
    return Scenario(
        name=str(data.get("name", "scenario")),
        coords=coords,
        horizon_min=_number(_field(data, "horizon_min", "scenario"), "horizon_min"),
        drivers=tuple(drivers),
        bookings=tuple(bookings),
        travel=travel,
    )


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The JSON form of a scenario; :func:`scenario_from_dict` reads it back unchanged."""
    lat_name, lon_name = ("lat", "lon") if scenario.coords == "latlon" else ("x", "y")
    return {
        "name": scenario.name,
        "coords": scenario.coords,
        "horizon_min": scenario.horizon_min,
        "travel": {
            "speed_kmh": scenario.travel.speed_kmh,
            "detour": scenario.travel.detour,
            "start_hour": scenario.travel.start_hour,
            "hourly_speed_factor": list(scenario.travel.hourly_speed_factor),
        },
        "drivers": [
            {
                "id": d.id,
                lat_name: d.start[0],
                lon_name: d.start[1],
                "shift": list(d.shift),
                "capacity": d.capacity,
            }
            for d in scenario.drivers
        ],
        "bookings": [
            {
                "id": b.id,
                "release_min": b.release_min,
                "pickup": list(b.pickup),
                "dropoff": list(b.dropoff),
                "requested_min": b.requested_min,
                "window": list(b.window),
                "service_min": b.service_min,
                "priority": b.priority,
                "load": b.load,
            }
            for b in scenario.bookings
        ],
    }
