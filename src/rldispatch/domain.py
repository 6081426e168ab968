"""Bookings, drivers and scenarios: plain, validated data.

Times are minutes from the start of the service day. Locations are ``(lat, lon)`` pairs when a
scenario's ``coords`` is ``"latlon"`` and ``(x, y)`` pairs when it is ``"xy"``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Coords = Literal["latlon", "xy"]
LATE_AFTER_REQUESTED_MIN = 5.0
"""A pickup more than this many minutes after the requested time counts as late."""
MAX_MINUTES = 100_000.0
"""Bound on every time in minutes (horizon, shifts, windows, releases): about 69 days."""
MAX_SERVICE_MIN = 1440.0
MAX_SEATS = 1000
"""Bound on a vehicle's places and a booking's load, of each kind."""
PLACE_KINDS = ("seated", "wheelchair", "stretcher")
"""The kinds of place in a vehicle; a passenger of one kind needs a place of that kind."""
MAX_BREAKS = 10
"""Bound on the breaks of one driver's shift."""
MAX_XY = 1e6
"""Bound on the absolute value of an ``xy`` coordinate."""
MIN_SPEED_KMH = 1.0
"""Below this a vehicle is not travelling: minutes per km would run to infinity."""
MAX_SPEED_KMH = 1000.0
MAX_DETOUR = 10.0
MIN_SPEED_FACTOR = 0.01
MAX_SPEED_FACTOR = 10.0
MAX_ID_LENGTH = 200


class ScenarioError(ValueError):
    """A scenario that breaks the format; the message names the field and the record."""


@dataclass(frozen=True, eq=False)
class Places:
    """Places by kind: a vehicle's capacity or a booking's load. A plain integer means that
    many seated places (:meth:`of`), and compares equal to them."""

    seated: int = 0
    wheelchair: int = 0
    stretcher: int = 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int) and not isinstance(other, bool):
            return self.as_tuple() == (other, 0, 0)
        if isinstance(other, Places):
            return self.as_tuple() == other.as_tuple()
        return NotImplemented

    def __hash__(self) -> int:
        if self.wheelchair == 0 and self.stretcher == 0:
            return hash(self.seated)
        return hash(self.as_tuple())

    @classmethod
    def of(cls, value: Places | int) -> Places:
        """``value`` as places: an integer is that many seated places."""
        if isinstance(value, Places):
            return value
        return cls(seated=value)

    def as_tuple(self) -> tuple[int, int, int]:
        """The places in the order of :data:`PLACE_KINDS`."""
        return (self.seated, self.wheelchair, self.stretcher)

    @property
    def total(self) -> int:
        return self.seated + self.wheelchair + self.stretcher

    def fits_in(self, capacity: Places) -> bool:
        """Whether a load of these places fits in ``capacity``, kind by kind."""
        return all(a <= b for a, b in zip(self.as_tuple(), capacity.as_tuple(), strict=True))

    def to_json(self) -> int | dict[str, int]:
        """The JSON form: a plain integer when every place is seated, else the kinds used."""
        if self.wheelchair == 0 and self.stretcher == 0:
            return self.seated
        return {kind: n for kind, n in zip(PLACE_KINDS, self.as_tuple(), strict=True) if n}


def _as_places(value: Any) -> Any:
    """An integer count as seated places; anything else unchanged (validated later)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SEATS:
        return Places(seated=int(value))
    return value


@dataclass(frozen=True)
class Break:
    """A driver's break: it starts between ``earliest_min`` and ``latest_min`` and lasts
    ``duration_min``, with nobody on board, where the driver is."""

    earliest_min: float
    latest_min: float
    duration_min: float


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
    load: Places = Places(seated=1)
    max_ride_min: float | None = None
    """The longest the patient may stay on board, from the end of the pickup to the start of
    the drop-off (``None``: no limit)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "load", _as_places(self.load))

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
    capacity: Places = Places(seated=1)
    breaks: tuple[Break, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "capacity", _as_places(self.capacity))


@dataclass(frozen=True)
class TravelConfig:
    """How fast vehicles move.

    ``speed_kmh`` is the free-flow speed, ``detour`` multiplies straight-line distance into road
    distance, ``start_hour`` is the clock hour at minute 0, and ``hourly_speed_factor`` scales
    the speed by hour of day (24 values; rush hours below 1). For ``xy`` scenarios one
    coordinate unit counts as one km. ``road_network`` (``latlon`` only) names an
    OpenStreetMap extract (``.osm.pbf``): travel then follows its fastest routes at the
    roads' own speeds instead of the detour formula (:mod:`rldispatch.sim.road_network`), the
    hourly factor still applying; ``speed_kmh`` and ``detour`` then only matter off the
    network's places.
    """

    speed_kmh: float = 28.0
    detour: float = 1.3
    start_hour: float = 6.0
    hourly_speed_factor: tuple[float, ...] = (1.0,) * 24
    road_network: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    coords: Coords
    horizon_min: float
    drivers: tuple[Driver, ...]
    bookings: tuple[Booking, ...]
    travel: TravelConfig = field(default_factory=TravelConfig)
    shared_rides: bool = False
    """Whether a vehicle may carry several bookings at once (within its places by kind);
    ``False``: one booking at a time."""

    def __post_init__(self) -> None:
        validate_scenario(self)

    @property
    def has_stops(self) -> bool:
        """Whether the day needs plans of stops: shared rides, breaks or maximum ride times."""
        return (
            self.shared_rides
            or any(d.breaks for d in self.drivers)
            or any(b.max_ride_min is not None for b in self.bookings)
        )


def _require_finite(value: float, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ScenarioError(f"{where}: must be a finite number, got {_shown(value)}")
    if isinstance(value, int) and abs(value) > 2**53:
        raise ScenarioError(f"{where}: {_shown(value)} is far too large")
    if not math.isfinite(value):
        raise ScenarioError(f"{where}: must be a finite number, got {value!r}")


def _require_range(value: float, low: float, high: float, where: str) -> None:
    """``value`` finite and within ``[low, high]``."""
    _require_finite(value, where)
    if not low <= value <= high:
        raise ScenarioError(f"{where}: {_shown(value)} is outside [{low:g}, {high:g}]")


def _require_count(value: int, high: int, where: str, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise ScenarioError(
            f"{where}: {name} must be an integer from 1 to {high}, got {_shown(value)}"
        )


def _check_places(value: Any, where: str, name: str) -> None:
    """A capacity or load: an integer from 1 (seated places) or places by kind, each from 0
    to :data:`MAX_SEATS` and at least one in all."""
    if not isinstance(value, Places):
        _require_count(value, MAX_SEATS, where, name)
        return
    for kind, count in zip(PLACE_KINDS, value.as_tuple(), strict=True):
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_SEATS:
            raise ScenarioError(
                f"{where}: {name}.{kind} must be an integer from 0 to {MAX_SEATS}, "
                f"got {_shown(count)}"
            )
    if value.total < 1:
        raise ScenarioError(f"{where}: {name} must hold at least one place")


def _check_breaks(driver: Driver, where: str) -> None:
    if len(driver.breaks) > MAX_BREAKS:
        raise ScenarioError(f"{where}: breaks: at most {MAX_BREAKS} breaks a shift")
    previous: Break | None = None
    for index, pause in enumerate(driver.breaks):
        at = f"{where}: breaks[{index}]"
        if not isinstance(pause, Break):
            raise ScenarioError(f"{at}: must be a break, got {_shown(pause)}")
        _require_range(pause.earliest_min, -MAX_MINUTES, MAX_MINUTES, f"{at}.earliest")
        _require_range(pause.latest_min, -MAX_MINUTES, MAX_MINUTES, f"{at}.latest")
        _require_range(pause.duration_min, 0.0, MAX_SERVICE_MIN, f"{at}.duration")
        if pause.duration_min <= 0:
            raise ScenarioError(f"{at}.duration: must be positive, got {pause.duration_min}")
        if pause.latest_min < pause.earliest_min:
            raise ScenarioError(
                f"{at}.latest: {pause.latest_min:g} is before earliest ({pause.earliest_min:g})"
            )
        if pause.earliest_min < driver.shift[0]:
            raise ScenarioError(f"{at}.earliest: before the shift starts ({driver.shift[0]:g})")
        if pause.latest_min + pause.duration_min > driver.shift[1]:
            raise ScenarioError(
                f"{at}.latest: the break would end after the shift ({driver.shift[1]:g})"
            )
        if previous is not None and (
            pause.earliest_min < previous.earliest_min or pause.latest_min < previous.latest_min
        ):
            raise ScenarioError(f"{at}: breaks must be listed in the order they are taken")
        previous = pause


def _shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a value, cut short (a 400-digit number or a long string stays one line)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"a {len(str(abs(value)))}-digit integer"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_location(point: tuple[float, float], coords: Coords, where: str) -> None:
    if len(point) != 2:
        raise ScenarioError(f"{where}: must be a pair of numbers, got {_shown(point)}")
    _require_finite(point[0], f"{where}[0]")
    _require_finite(point[1], f"{where}[1]")
    if coords == "xy":
        _require_range(point[0], -MAX_XY, MAX_XY, f"{where}[0]")
        _require_range(point[1], -MAX_XY, MAX_XY, f"{where}[1]")
    if coords == "latlon":
        if not -90.0 <= point[0] <= 90.0:
            raise ScenarioError(f"{where}: latitude {point[0]} is outside [-90, 90]")
        if not -180.0 <= point[1] <= 180.0:
            raise ScenarioError(f"{where}: longitude {point[1]} is outside [-180, 180]")


def validate_scenario(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` naming the first field that breaks the format."""
    if scenario.coords not in ("latlon", "xy"):
        raise ScenarioError(f"coords: must be 'latlon' or 'xy', got {_shown(scenario.coords)}")
    if not isinstance(scenario.shared_rides, bool):
        raise ScenarioError(
            f"shared_rides: must be true or false, got {_shown(scenario.shared_rides)}"
        )
    _require_finite(scenario.horizon_min, "horizon_min")
    if scenario.horizon_min <= 0:
        raise ScenarioError(f"horizon_min: must be positive, got {scenario.horizon_min}")
    _require_range(scenario.horizon_min, 0.0, MAX_MINUTES, "horizon_min")
    _validate_travel(scenario.travel)
    if scenario.travel.road_network is not None and scenario.coords != "latlon":
        raise ScenarioError("travel.road_network: needs coords 'latlon'")
    if not scenario.drivers:
        raise ScenarioError("drivers: the fleet is empty; a scenario needs at least one driver")
    seen: set[str] = set()
    for driver in scenario.drivers:
        where = f"driver {_shown(driver.id)}"
        _check_id(driver.id, "drivers[].id")
        if driver.id in seen:
            raise ScenarioError(f"{where}: id is used twice")
        seen.add(driver.id)
        _check_location(driver.start, scenario.coords, f"{where}: start")
        _require_range(driver.shift[0], -MAX_MINUTES, MAX_MINUTES, f"{where}: shift[0]")
        _require_range(driver.shift[1], -MAX_MINUTES, MAX_MINUTES, f"{where}: shift[1]")
        if driver.shift[1] <= driver.shift[0]:
            raise ScenarioError(f"{where}: shift ends ({driver.shift[1]}) before it starts")
        _check_places(driver.capacity, where, "capacity")
        _check_breaks(driver, where)
    seen = set()
    for booking in scenario.bookings:
        where = f"booking {_shown(booking.id)}"
        _check_id(booking.id, "bookings[].id")
        if booking.id in seen:
            raise ScenarioError(f"{where}: id is used twice")
        seen.add(booking.id)
        _validate_booking(booking, scenario.coords, where)


def _check_id(identifier: str, where: str) -> None:
    if not isinstance(identifier, str) or not identifier:
        raise ScenarioError(f"{where}: must be a non-empty string")
    if len(identifier) > MAX_ID_LENGTH:
        raise ScenarioError(
            f"{where}: {_shown(identifier)} is longer than {MAX_ID_LENGTH} characters"
        )


def _validate_travel(travel: TravelConfig) -> None:
    if travel.road_network is not None and (
        not isinstance(travel.road_network, str) or not travel.road_network.strip()
    ):
        raise ScenarioError(
            f"travel.road_network: must be the path of an .osm.pbf file, got "
            f"{_shown(travel.road_network)}"
        )
    _require_finite(travel.speed_kmh, "travel.speed_kmh")
    if travel.speed_kmh <= 0:
        raise ScenarioError(f"travel.speed_kmh: must be positive, got {travel.speed_kmh}")
    _require_range(travel.speed_kmh, MIN_SPEED_KMH, MAX_SPEED_KMH, "travel.speed_kmh")
    _require_finite(travel.detour, "travel.detour")
    if travel.detour < 1.0:
        raise ScenarioError(f"travel.detour: must be at least 1, got {travel.detour}")
    _require_range(travel.detour, 1.0, MAX_DETOUR, "travel.detour")
    _require_finite(travel.start_hour, "travel.start_hour")
    if not 0.0 <= travel.start_hour < 24.0:
        raise ScenarioError(
            f"travel.start_hour: must be a clock hour from 0 to 23, got {_shown(travel.start_hour)}"
        )
    if len(travel.hourly_speed_factor) != 24:
        raise ScenarioError("travel.hourly_speed_factor: needs 24 values, one per hour")
    for hour, factor in enumerate(travel.hourly_speed_factor):
        where = f"travel.hourly_speed_factor[{hour}]"
        _require_finite(factor, where)
        if factor <= 0:
            raise ScenarioError(f"{where}: must be positive")
        _require_range(factor, MIN_SPEED_FACTOR, MAX_SPEED_FACTOR, where)


def _validate_booking(booking: Booking, coords: Coords, where: str) -> None:
    _check_location(booking.pickup, coords, f"{where}: pickup")
    _check_location(booking.dropoff, coords, f"{where}: dropoff")
    for name in ("release_min", "requested_min"):
        _require_range(getattr(booking, name), -MAX_MINUTES, MAX_MINUTES, f"{where}: {name}")
    _require_range(booking.window[0], -MAX_MINUTES, MAX_MINUTES, f"{where}: window[0]")
    _require_range(booking.window[1], -MAX_MINUTES, MAX_MINUTES, f"{where}: window[1]")
    _require_finite(booking.service_min, f"{where}: service_min")
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
    _require_range(booking.service_min, 0.0, MAX_SERVICE_MIN, f"{where}: service_min")
    if booking.priority not in (0, 1) or isinstance(booking.priority, bool):
        raise ScenarioError(f"{where}: priority must be 0 (normal) or 1 (urgent)")
    _check_places(booking.load, where, "load")
    if booking.max_ride_min is not None:
        _require_range(booking.max_ride_min, 0.0, MAX_MINUTES, f"{where}: max_ride_min")
        if booking.max_ride_min <= 0:
            raise ScenarioError(f"{where}: max_ride_min must be positive")


# --- JSON form -------------------------------------------------------------------------------


SCENARIO_KEYS = (
    "name",
    "coords",
    "horizon_min",
    "travel",
    "shared_rides",
    "drivers",
    "bookings",
)
TRAVEL_KEYS = ("speed_kmh", "detour", "start_hour", "hourly_speed_factor", "road_network")
DRIVER_KEYS = ("id", "lat", "lon", "x", "y", "start", "shift", "capacity", "breaks")
BREAK_KEYS = ("earliest", "latest", "duration")
BOOKING_KEYS = (
    "id",
    "release_min",
    "pickup",
    "dropoff",
    "requested_min",
    "window",
    "service_min",
    "priority",
    "load",
    "max_ride_min",
)
"""The fields of each record of the JSON form; any other key is refused."""


def _object(record: Any, known: tuple[str, ...], where: str) -> dict[str, Any]:
    """``record`` as an object holding only ``known`` keys; an unknown key is named, with the
    closest known one as a suggestion."""
    if not isinstance(record, dict):
        raise ScenarioError(f"{where}: must be an object, got {_shown(record)}")
    for key in record:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ScenarioError(
                f"{where}: unknown field {_shown(key)}{hint}; known fields: {', '.join(known)}"
            )
    return record


def _record_name(record: Any, kind: str, index: int) -> str:
    """``driver 'd1'`` when the record has a usable id, else ``drivers[0]``."""
    identifier = record.get("id") if isinstance(record, dict) else None
    if isinstance(identifier, str) and 0 < len(identifier) <= MAX_ID_LENGTH:
        return f"{kind} {identifier!r}"
    return f"{kind}s[{index}]"


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise ScenarioError(f"{where}: missing field '{name}'")
    return record[name]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where}: must be a number, got {_shown(value)}")
    _require_finite(value, where)
    return float(value)


def _integer(value: Any, where: str) -> int:
    number = _number(value, where)
    if not number.is_integer():
        raise ScenarioError(f"{where}: must be an integer, got {_shown(value)}")
    return int(number)


def _identifier(value: Any, where: str) -> str:
    """A record's id: a string, or an integer written as one."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}: id must be a non-empty string, got {_shown(value)}")
    _check_id(value, where)
    return value


def _pair(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ScenarioError(f"{where}: must be a list of two numbers, got {_shown(value)}")
    return (_number(value[0], f"{where}[0]"), _number(value[1], f"{where}[1]"))


def _places_from_json(value: Any, where: str, name: str) -> Places:
    """A capacity or load: a plain integer (seated places) or an object of places by kind;
    an unknown kind is named with the closest known one."""
    if isinstance(value, dict):
        kinds = _object(value, PLACE_KINDS, f"{where}: {name}")
        return Places(
            **{kind: _integer(count, f"{where}: {name}.{kind}") for kind, count in kinds.items()}
        )
    count = _integer(value, f"{where}: {name}")
    _require_count(count, MAX_SEATS, where, name)
    return Places(seated=count)


def _breaks_from_json(value: Any, where: str) -> tuple[Break, ...]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: breaks must be a list, got {_shown(value)}")
    if len(value) > MAX_BREAKS:
        raise ScenarioError(f"{where}: breaks: at most {MAX_BREAKS} breaks a shift")
    breaks = []
    for index, record in enumerate(value):
        at = f"{where}: breaks[{index}]"
        record = _object(record, BREAK_KEYS, at)
        breaks.append(
            Break(
                earliest_min=_number(_field(record, "earliest", at), f"{at}.earliest"),
                latest_min=_number(_field(record, "latest", at), f"{at}.latest"),
                duration_min=_number(_field(record, "duration", at), f"{at}.duration"),
            )
        )
    return tuple(breaks)


def _travel_from_dict(value: Any) -> TravelConfig:
    travel_data = _object(value, TRAVEL_KEYS, "travel")
    defaults = TravelConfig()
    factors = travel_data.get("hourly_speed_factor", defaults.hourly_speed_factor)
    if not isinstance(factors, (list, tuple)) or len(factors) != 24:
        raise ScenarioError("travel.hourly_speed_factor: must be a list of 24 numbers")
    return TravelConfig(
        speed_kmh=_number(travel_data.get("speed_kmh", defaults.speed_kmh), "travel.speed_kmh"),
        detour=_number(travel_data.get("detour", defaults.detour), "travel.detour"),
        start_hour=_number(travel_data.get("start_hour", defaults.start_hour), "travel.start_hour"),
        hourly_speed_factor=tuple(
            _number(v, f"travel.hourly_speed_factor[{i}]") for i, v in enumerate(factors)
        ),
        road_network=travel_data.get("road_network"),
    )


def _driver_from_dict(record: Any, index: int, coords: Coords) -> Driver:
    record = _object(record, DRIVER_KEYS, _record_name(record, "driver", index))
    driver_id = _identifier(_field(record, "id", f"drivers[{index}]"), f"drivers[{index}]")
    where = f"driver {driver_id!r}"
    lat_name, lon_name = ("lat", "lon") if coords == "latlon" else ("x", "y")
    other = {"lat", "lon", "x", "y"} - {lat_name, lon_name}
    misplaced = sorted(other & set(record))
    if misplaced:
        raise ScenarioError(
            f"{where}: field '{misplaced[0]}' does not fit coords '{coords}' "
            f"(use {lat_name}, {lon_name})"
        )
    if "start" in record:
        if lat_name in record or lon_name in record:
            raise ScenarioError(f"{where}: give either start or {lat_name}/{lon_name}, not both")
        start = _pair(record["start"], f"{where}: start")
    else:
        start = (
            _number(_field(record, lat_name, where), f"{where}: {lat_name}"),
            _number(_field(record, lon_name, where), f"{where}: {lon_name}"),
        )
    return Driver(
        id=driver_id,
        start=start,
        shift=_pair(_field(record, "shift", where), f"{where}: shift"),
        capacity=_places_from_json(record.get("capacity", 1), where, "capacity"),
        breaks=_breaks_from_json(record.get("breaks", []), where),
    )


def _booking_from_dict(record: Any, index: int) -> Booking:
    record = _object(record, BOOKING_KEYS, _record_name(record, "booking", index))
    booking_id = _identifier(_field(record, "id", f"bookings[{index}]"), f"bookings[{index}]")
    where = f"booking {booking_id!r}"
    return Booking(
        id=booking_id,
        release_min=_number(_field(record, "release_min", where), f"{where}: release_min"),
        pickup=_pair(_field(record, "pickup", where), f"{where}: pickup"),
        dropoff=_pair(_field(record, "dropoff", where), f"{where}: dropoff"),
        requested_min=_number(_field(record, "requested_min", where), f"{where}: requested_min"),
        window=_pair(_field(record, "window", where), f"{where}: window"),
        service_min=_number(record.get("service_min", 2.0), f"{where}: service_min"),
        priority=_integer(record.get("priority", 0), f"{where}: priority"),
        load=_places_from_json(record.get("load", 1), where, "load"),
        max_ride_min=(
            None
            if record.get("max_ride_min") is None
            else _number(record["max_ride_min"], f"{where}: max_ride_min")
        ),
    )


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a scenario from its JSON form (see DESIGN.md), validating every field.

    Unknown keys are refused at every level (with the closest known key as a suggestion), and
    every number must be finite and within the bounds of :func:`validate_scenario`.
    """
    if not isinstance(data, dict):
        raise ScenarioError("scenario: the file must hold a JSON object")
    data = _object(data, SCENARIO_KEYS, "scenario")
    coords = _field(data, "coords", "scenario")
    if coords not in ("latlon", "xy"):
        raise ScenarioError(f"coords: must be 'latlon' or 'xy', got {_shown(coords)}")
    name = data.get("name", "scenario")
    if not isinstance(name, str) or len(name) > MAX_ID_LENGTH:
        raise ScenarioError(
            f"name: must be a string of at most {MAX_ID_LENGTH} characters, got {_shown(name)}"
        )
    travel = _travel_from_dict(data.get("travel", {}))
    shared_rides = data.get("shared_rides", False)
    if not isinstance(shared_rides, bool):
        raise ScenarioError(f"shared_rides: must be true or false, got {_shown(shared_rides)}")
    drivers_data = _field(data, "drivers", "scenario")
    if not isinstance(drivers_data, list):
        raise ScenarioError("drivers: must be a list")
    bookings_data = _field(data, "bookings", "scenario")
    if not isinstance(bookings_data, list):
        raise ScenarioError("bookings: must be a list")
    return Scenario(
        name=name,
        coords=coords,
        horizon_min=_number(_field(data, "horizon_min", "scenario"), "horizon_min"),
        drivers=tuple(
            _driver_from_dict(record, index, coords) for index, record in enumerate(drivers_data)
        ),
        bookings=tuple(
            _booking_from_dict(record, index) for index, record in enumerate(bookings_data)
        ),
        travel=travel,
        shared_rides=shared_rides,
    )


def travel_to_dict(travel: TravelConfig) -> dict[str, Any]:
    """The scenario format's ``travel`` block of a travel model (``road_network`` only when
    it has one)."""
    block: dict[str, Any] = {
        "speed_kmh": travel.speed_kmh,
        "detour": travel.detour,
        "start_hour": travel.start_hour,
        "hourly_speed_factor": list(travel.hourly_speed_factor),
    }
    if travel.road_network is not None:
        block["road_network"] = travel.road_network
    return block


def travel_from_dict(data: Any) -> TravelConfig:
    """A travel model from the scenario format's ``travel`` block, validated as in a scenario
    file (fields left out keep their defaults)."""
    travel = _travel_from_dict(data)
    _validate_travel(travel)
    return travel


def _driver_to_dict(driver: Driver, lat_name: str, lon_name: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": driver.id,
        lat_name: driver.start[0],
        lon_name: driver.start[1],
        "shift": list(driver.shift),
        "capacity": driver.capacity.to_json(),
    }
    if driver.breaks:
        record["breaks"] = [
            {"earliest": b.earliest_min, "latest": b.latest_min, "duration": b.duration_min}
            for b in driver.breaks
        ]
    return record


def _booking_to_dict(booking: Booking) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": booking.id,
        "release_min": booking.release_min,
        "pickup": list(booking.pickup),
        "dropoff": list(booking.dropoff),
        "requested_min": booking.requested_min,
        "window": list(booking.window),
        "service_min": booking.service_min,
        "priority": booking.priority,
        "load": booking.load.to_json(),
    }
    if booking.max_ride_min is not None:
        record["max_ride_min"] = booking.max_ride_min
    return record


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The JSON form of a scenario; :func:`scenario_from_dict` reads it back unchanged."""
    lat_name, lon_name = ("lat", "lon") if scenario.coords == "latlon" else ("x", "y")
    data: dict[str, Any] = {
        "name": scenario.name,
        "coords": scenario.coords,
        "horizon_min": scenario.horizon_min,
        "travel": travel_to_dict(scenario.travel),
        "drivers": [_driver_to_dict(d, lat_name, lon_name) for d in scenario.drivers],
        "bookings": [_booking_to_dict(b) for b in scenario.bookings],
    }
    if scenario.shared_rides:
        data["shared_rides"] = True
    return data
