"""The published Cordeau dial-a-ride instances (``aK-N.txt``), read into plain validated data.

File format: a header line ``m 2n T Q L`` (vehicles, pickup and drop-off nodes, maximum route
duration, vehicle capacity, maximum ride time), then one line per node
``id x y service_time load earliest latest`` separated by tabs or spaces. Node 0 is the depot,
nodes ``1..n`` are pickups, node ``i + n`` is the drop-off of pickup ``i``, and a final end
depot ``2n + 1`` is present in most files but not all. Distances and travel times are the
Euclidean distance between points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rldispatch.domain import (
    MAX_MINUTES,
    MAX_SEATS,
    MAX_SERVICE_MIN,
    MAX_XY,
    Booking,
    Driver,
    Scenario,
    ScenarioError,
    TravelConfig,
)
from rldispatch.scenarios.reading import read_limited_bytes

BEST_KNOWN_COSTS: dict[str, float] = {
    "a2-16": 294.25,
    "a2-20": 344.83,
    "a2-24": 431.12,
    "a3-24": 344.83,
    "a3-30": 494.85,
    "a3-36": 583.19,
    "a4-32": 485.50,
    "a4-40": 557.69,
    "a4-48": 668.82,
    "a5-40": 498.41,
    "a5-50": 686.62,
    "a5-60": 808.42,
    "a6-48": 604.12,
    "a6-60": 819.25,
    "a6-72": 916.05,
    "a7-56": 724.04,
    "a7-70": 889.12,
    "a7-84": 1033.37,
    "a8-64": 747.46,
    "a8-80": 945.73,
    "a8-96": 1229.66,
}
"""Optimal total distance of each a-series instance (Cordeau 2006 and later branch-and-cut)."""

DAY_MIN = 1440.0
HEADER_FIELDS = ("vehicles", "nodes", "max_route_duration", "capacity", "max_ride_time")
NODE_FIELDS = ("id", "x", "y", "service_time", "load", "earliest", "latest")
FIELD_BOUNDS = {
    "x": MAX_XY,
    "y": MAX_XY,
    "service_time": MAX_SERVICE_MIN,
    "earliest": MAX_MINUTES,
    "latest": MAX_MINUTES,
    "max_route_duration": MAX_MINUTES,
    "max_ride_time": MAX_MINUTES,
    "capacity": MAX_SEATS,
    "load": MAX_SEATS,
}
"""Largest absolute value of each field; ``id`` and ``vehicles`` are bounded by the node lines."""


def _frozen(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    values = np.array(values, dtype=dtype, copy=True)
    values.flags.writeable = False
    return values


@dataclass(frozen=True, eq=False)
class CordeauInstance:
    """A static dial-a-ride instance; arrays are per request ``i`` (0-based), read-only.

    Request ``i`` is node ``i + 1`` (pickup) and node ``i + 1 + n`` (drop-off) in the file.
    Distance and travel time are both the Euclidean distance (one unit = one minute).
    """

    name: str
    n_vehicles: int
    max_route_duration: float
    capacity: int
    max_ride_time: float
    depot_xy: tuple[float, float]
    depot_window: tuple[float, float]
    end_depot_window: tuple[float, float]
    pickup_xy: np.ndarray
    dropoff_xy: np.ndarray
    pickup_service: np.ndarray
    dropoff_service: np.ndarray
    load: np.ndarray
    pickup_window: np.ndarray
    dropoff_window: np.ndarray

    @property
    def n_requests(self) -> int:
        return int(self.pickup_xy.shape[0])

    @property
    def is_inbound(self) -> np.ndarray:
        """True where the narrow window is on the drop-off rather than on the pickup."""
        pickup_width = self.pickup_window[:, 1] - self.pickup_window[:, 0]
        dropoff_width = self.dropoff_window[:, 1] - self.dropoff_window[:, 0]
        return dropoff_width < pickup_width

    def direct_distance(self) -> np.ndarray:
        """Distance (= travel time) from each pickup straight to its drop-off."""
        return np.hypot(*(self.dropoff_xy - self.pickup_xy).T)

    def to_scenario(self) -> Scenario:
        """The instance as a scenario for the online simulator.

        One unit is one km and one minute (60 km/h, no detour, flat speed profile). Rides
        are shared within the vehicle's capacity (seated places) and each booking keeps the
        instance's maximum ride time. Every booking is released at minute 0. An outbound
        request keeps its pickup window; an inbound one (window on the drop-off) gets the
        pickup window that reaches the drop-off in its window within the maximum ride time:
        ``[max(0, e_drop - L - service), l_drop - service - direct]``.
        """
        direct = self.direct_distance()
        inbound = self.is_inbound
        bookings = []
        for i in range(self.n_requests):
            service = float(self.pickup_service[i])
            if inbound[i]:
                drop_early, drop_late = self.dropoff_window[i]
                earliest = max(0.0, float(drop_early) - self.max_ride_time - service)
                latest = float(drop_late) - service - float(direct[i])
                latest = max(latest, earliest)
            else:
                earliest, latest = (float(v) for v in self.pickup_window[i])
            bookings.append(
                Booking(
                    id=str(i + 1),
                    release_min=0.0,
                    pickup=(float(self.pickup_xy[i, 0]), float(self.pickup_xy[i, 1])),
                    dropoff=(float(self.dropoff_xy[i, 0]), float(self.dropoff_xy[i, 1])),
                    requested_min=earliest,
                    window=(earliest, latest),
                    service_min=service,
                    priority=0,
                    load=int(self.load[i]),
                    max_ride_min=float(self.max_ride_time),
                )
            )
        shift = (float(self.depot_window[0]), float(self.depot_window[1]))
        drivers = tuple(
            Driver(id=f"v{k + 1}", start=self.depot_xy, shift=shift, capacity=self.capacity)
            for k in range(self.n_vehicles)
        )
        horizon_min = max(
            DAY_MIN,
            shift[1],
            float(self.pickup_window[:, 1].max(initial=0.0)),
            float(self.dropoff_window[:, 1].max(initial=0.0)),
        )
        return Scenario(
            name=self.name,
            coords="xy",
            horizon_min=horizon_min,
            drivers=drivers,
            bookings=tuple(bookings),
            travel=TravelConfig(
                speed_kmh=60.0, detour=1.0, start_hour=0.0, hourly_speed_factor=(1.0,) * 24
            ),
            shared_rides=True,
        )


def _number(text: str, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(f"{where}: field '{field}' is not a number: {_shown(text)}") from None
    if not math.isfinite(value):
        raise ScenarioError(f"{where}: field '{field}' must be finite, got {_shown(text)}")
    bound = FIELD_BOUNDS.get(field)
    if bound is not None and abs(value) > bound:
        raise ScenarioError(
            f"{where}: field '{field}' {_shown(text)} is out of range (at most {bound:g} in size)"
        )
    return value


def _shown(text: str, limit: int = 30) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def _integer(text: str, where: str, field: str) -> int:
    value = _number(text, where, field)
    if not value.is_integer() or abs(value) > 2**53:
        raise ScenarioError(f"{where}: field '{field}' must be an integer, got {_shown(text)}")
    return int(value)


def _parse_node(line_no: int, fields: list[str], where_file: str) -> tuple[float, ...]:
    where = f"{where_file} line {line_no}"
    if len(fields) != len(NODE_FIELDS):
        raise ScenarioError(
            f"{where}: expected {len(NODE_FIELDS)} fields ({' '.join(NODE_FIELDS)}), "
            f"got {len(fields)}"
        )
    values = []
    for name, text in zip(NODE_FIELDS, fields, strict=True):
        if name in ("id", "load"):
            values.append(float(_integer(text, where, name)))
        else:
            values.append(_number(text, where, name))
    if values[3] < 0:
        raise ScenarioError(f"{where}: field 'service_time' must not be negative")
    if values[6] < values[5]:
        raise ScenarioError(f"{where}: field 'latest' ({values[6]}) is before 'earliest'")
    return tuple(values)


def read_cordeau(path: str | Path) -> CordeauInstance:
    """Read a Cordeau ``.txt`` instance; a broken file raises :class:`ScenarioError`.

    Requests are counted from the node lines; the node count in the header is not trusted,
    and the vehicle count may not exceed the requests (checked before anything is built).
    """
    path = Path(path)
    data = read_limited_bytes(path, what="Cordeau instance file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{path}: not a text file (undecodable byte at {error.start}); "
            "a Cordeau instance is plain text"
        ) from None
    lines = [(no, line.split()) for no, line in enumerate(text.splitlines(), start=1)]
    lines = [(no, fields) for no, fields in lines if fields]
    if not lines:
        raise ScenarioError(f"{path}: the file is empty")
    header_no, header = lines[0]
    where = f"{path} line {header_no}"
    if len(header) != len(HEADER_FIELDS):
        raise ScenarioError(
            f"{where}: the header needs {len(HEADER_FIELDS)} fields "
            f"({' '.join(HEADER_FIELDS)}), got {len(header)}"
        )
    n_vehicles = _integer(header[0], where, "vehicles")
    max_route_duration = _number(header[2], where, "max_route_duration")
    capacity = _integer(header[3], where, "capacity")
    max_ride_time = _number(header[4], where, "max_ride_time")
    if n_vehicles < 1:
        raise ScenarioError(f"{where}: field 'vehicles' must be at least 1, got {n_vehicles}")
    if capacity < 1:
        raise ScenarioError(f"{where}: field 'capacity' must be at least 1, got {capacity}")
    if max_route_duration <= 0 or max_ride_time <= 0:
        raise ScenarioError(f"{where}: 'max_route_duration' and 'max_ride_time' must be > 0")

    nodes = [_parse_node(no, fields, str(path)) for no, fields in lines[1:]]
    node_lines = [no for no, _ in lines[1:]]
    for index, (node, line_no) in enumerate(zip(nodes, node_lines, strict=True)):
        if int(node[0]) != index:
            raise ScenarioError(
                f"{path} line {line_no}: field 'id' should be {index} (nodes in order), "
                f"got {int(node[0])}"
            )
    if not nodes:
        raise ScenarioError(f"{path}: no node lines after the header")
    depot = nodes[0]
    rest = nodes[1:]
    end_depot = depot
    if len(rest) % 2 == 1:
        end_depot = rest.pop()
        if end_depot[4] != 0:
            raise ScenarioError(
                f"{path} line {node_lines[-1]}: field 'load' of the end depot must be 0 "
                f"(an odd number of pickup and drop-off nodes)"
            )
    n = len(rest) // 2
    if n == 0:
        raise ScenarioError(f"{path}: no requests (no pickup and drop-off nodes)")
    if n_vehicles > n:
        raise ScenarioError(
            f"{where}: field 'vehicles' is {n_vehicles}, more than the {n} requests the file holds"
        )
    table = np.asarray(rest, dtype=np.float64)
    pickups, dropoffs = table[:n], table[n:]
    for i in range(n):
        load = pickups[i, 4]
        if load <= 0 or load > capacity:
            raise ScenarioError(
                f"{path} line {node_lines[1 + i]}: field 'load' of a pickup must be in "
                f"[1, capacity={capacity}], got {int(load)}"
            )
        if dropoffs[i, 4] != -load:
            raise ScenarioError(
                f"{path} line {node_lines[1 + n + i]}: field 'load' of the drop-off of request "
                f"{i + 1} must be {-int(load)}, got {int(dropoffs[i, 4])}"
            )
    return CordeauInstance(
        name=path.stem,
        n_vehicles=n_vehicles,
        max_route_duration=max_route_duration,
        capacity=capacity,
        max_ride_time=max_ride_time,
        depot_xy=(depot[1], depot[2]),
        depot_window=(depot[5], depot[6]),
        end_depot_window=(end_depot[5], end_depot[6]),
        pickup_xy=_frozen(pickups[:, 1:3]),
        dropoff_xy=_frozen(dropoffs[:, 1:3]),
        pickup_service=_frozen(pickups[:, 3]),
        dropoff_service=_frozen(dropoffs[:, 3]),
        load=_frozen(pickups[:, 4], np.int64),
        pickup_window=_frozen(pickups[:, 5:7]),
        dropoff_window=_frozen(dropoffs[:, 5:7]),
    )


def generate_cordeau(
    n_requests: int,
    n_vehicles: int,
    seed: int,
    max_route_duration: float = 720.0,
    capacity: int = 3,
    max_ride_time: float = 30.0,
    max_load: int = 1,
    service_min: float = 3.0,
    window_min: float = 15.0,
    name: str | None = None,
) -> CordeauInstance:
    """A random instance of the published instances' shape, drawn from ``seed``.

    As in the a-series: points uniform in the square [-10, 10]², the depot at its centre;
    half the requests outbound (a ``window_min`` window on the pickup), half inbound (on the
    drop-off); the other stop's window is the whole day; each route lasts at most
    ``max_route_duration``, which is also when the depot closes. A narrow window opens
    uniformly so that the request can still be served and the vehicle be back in time.
    Loads are uniform in ``1..max_load``. Feasibility is likely, not guaranteed, with about
    as many requests per vehicle as the published files (12 for 720 minutes).
    """
    if n_requests < 1 or n_vehicles < 1 or n_vehicles > n_requests:
        raise ScenarioError(
            f"n_requests ({n_requests}) and n_vehicles ({n_vehicles}) must be at least 1, "
            "with no more vehicles than requests"
        )
    if not 1 <= max_load <= capacity:
        raise ScenarioError(f"max_load must be in [1, capacity={capacity}], got {max_load}")
    horizon = float(max_route_duration)
    if horizon < 2 * max_ride_time + 2 * window_min + 60.0:
        raise ScenarioError(
            f"max_route_duration {horizon:g} is too short for rides of {max_ride_time:g} min"
        )
    rng = np.random.default_rng(seed)
    pickup_xy = rng.uniform(-10.0, 10.0, size=(n_requests, 2))
    dropoff_xy = rng.uniform(-10.0, 10.0, size=(n_requests, 2))
    inbound = np.zeros(n_requests, dtype=bool)
    inbound[n_requests // 2 :] = True
    inbound = rng.permutation(inbound)
    # Room to reach the pickup from the depot (inbound) and to get back after the drop-off
    # (the depot is at most 10 * sqrt(2) away).
    reach = 15.0 + service_min
    outbound_opens = rng.uniform(
        0.0, horizon - window_min - max_ride_time - 2 * service_min - 30.0, size=n_requests
    )
    inbound_opens = rng.uniform(
        max_ride_time + reach, horizon - window_min - service_min - 30.0, size=n_requests
    )
    opens = np.where(inbound, inbound_opens, outbound_opens)
    whole_day = np.tile([0.0, DAY_MIN], (n_requests, 1))
    narrow = np.column_stack([np.floor(opens), np.floor(opens) + window_min])
    pickup_window = np.where(inbound[:, None], whole_day, narrow)
    dropoff_window = np.where(inbound[:, None], narrow, whole_day)
    load = rng.integers(1, max_load + 1, size=n_requests)
    service = np.full(n_requests, float(service_min))
    return CordeauInstance(
        name=name or f"g{n_vehicles}-{n_requests}-s{seed}",
        n_vehicles=n_vehicles,
        max_route_duration=horizon,
        capacity=capacity,
        max_ride_time=float(max_ride_time),
        depot_xy=(0.0, 0.0),
        depot_window=(0.0, DAY_MIN),
        end_depot_window=(0.0, horizon),
        pickup_xy=_frozen(np.round(pickup_xy, 3)),
        dropoff_xy=_frozen(np.round(dropoff_xy, 3)),
        pickup_service=_frozen(service),
        dropoff_service=_frozen(service),
        load=_frozen(load, np.int64),
        pickup_window=_frozen(pickup_window),
        dropoff_window=_frozen(dropoff_window),
    )


def cordeau_text(instance: CordeauInstance) -> str:
    """The instance in the published file format (read back by :func:`read_cordeau`)."""
    n = instance.n_requests
    lines = [
        f"{instance.n_vehicles} {2 * n} {instance.max_route_duration:g} {instance.capacity} "
        f"{instance.max_ride_time:g}"
    ]

    def node(i: int, xy, service: float, load: int, window) -> str:
        return f"{i} {xy[0]:.3f} {xy[1]:.3f} {service:g} {load} {window[0]:g} {window[1]:g}"

    lines.append(node(0, instance.depot_xy, 0.0, 0, instance.depot_window))
    for i in range(n):
        lines.append(
            node(i + 1, instance.pickup_xy[i], float(instance.pickup_service[i]),
                 int(instance.load[i]), instance.pickup_window[i])
        )  # fmt: skip
    for i in range(n):
        lines.append(
            node(n + i + 1, instance.dropoff_xy[i], float(instance.dropoff_service[i]),
                 -int(instance.load[i]), instance.dropoff_window[i])
        )  # fmt: skip
    lines.append(node(2 * n + 1, instance.depot_xy, 0.0, 0, instance.end_depot_window))
    return "\n".join(lines) + "\n"
