"""Distances and travel times.

Latitude/longitude points are turned once into unit vectors on the sphere, so that the
great-circle (haversine) distance of many pairs is a few array operations:
``2 R asin(|u - v| / 2)``. Road distance is that times the detour factor. For ``xy`` scenarios
distance is Euclidean and one unit counts as one km.

A leg's speed is the free-flow speed times the hour-of-day factor of the hour in which the
booking the leg leads to is requested. Tying the speed to the booking rather than to the
moment of departure keeps travel times fixed per leg, so a delay never shortens a later leg
and the simulator's feasibility checks are exact.

On a road network (``travel.road_network``, :mod:`rldispatch.sim.road_network`) every place of
the day (driver starts, pickups, drop-offs) is snapped to the network once, and the km and
free-flow minutes of the fastest routes between them are one matrix each. A point is then
embedded as ``(slot, unit vector)``: the row in the matrices of the place whose junction it
snaps to (-1 when no place of the day has that junction: then the formula serves) and its
point on the sphere. A leg's
time is its *pace km* times the booking's minutes per km: on the formula pace km are the km;
on roads they are the km the free-flow speed ``speed_kmh`` covers in the route's free-flow
minutes, so the leg takes those minutes over the hourly speed factor.
"""

from __future__ import annotations

import numpy as np

from rldispatch.domain import Scenario

EARTH_RADIUS_KM = 6371.0088


NO_ROADS = np.zeros((0, 0), dtype=np.float32)


class TravelModel:
    """The travel of a day: the formula, or a road network's (see the module docstring).

    :param places: on a road network, the points ``(n, 2)`` to snap and route between
        (default: the scenario's driver starts, pickups and drop-offs).
    """

    def __init__(self, scenario: Scenario, places: np.ndarray | None = None) -> None:
        self.coords = scenario.coords
        travel = scenario.travel
        self.detour = travel.detour if scenario.coords == "latlon" else 1.0
        self.speed_kmh = travel.speed_kmh
        self.start_hour = travel.start_hour
        self.hourly_speed_factor = np.asarray(travel.hourly_speed_factor, dtype=np.float64)
        self.great_circle = scenario.coords == "latlon"
        self.scale_km = 2.0 * EARTH_RADIUS_KM * self.detour if self.great_circle else 1.0
        self.road_network = travel.road_network
        self.road_km = NO_ROADS
        self.road_pace_km = NO_ROADS
        if self.road_network is not None:
            self._route_places(scenario, places)
        self.kernel_args = (self.great_circle, self.scale_km, self.road_km, self.road_pace_km)
        """What the compiled kernels take (:func:`rldispatch.sim.kernels.leg_km`)."""

    def _route_places(self, scenario: Scenario, places: np.ndarray | None) -> None:
        from rldispatch.sim.road_network import load_road_network

        self.network = load_road_network(self.road_network)
        if places is None:
            points = [d.start for d in scenario.drivers]
            points += [b.pickup for b in scenario.bookings] + [b.dropoff for b in scenario.bookings]
            places = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.place_nodes = np.unique(self.network.snap(places))
        minutes, km = self.network.day_tables(self.place_nodes)
        self.road_km = km
        self.road_pace_km = (minutes * np.float32(self.speed_kmh / 60.0)).astype(np.float32)

    @property
    def on_roads(self) -> bool:
        return self.road_network is not None

    def embed(self, points: np.ndarray) -> np.ndarray:
        """Points ``(n, 2)`` to the vectors :meth:`distance_km` works on."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.coords == "xy":
            return points.copy()
        lat = np.radians(points[:, 0])
        lon = np.radians(points[:, 1])
        cos_lat = np.cos(lat)
        sphere = np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=1)
        if not self.on_roads:
            return sphere
        nodes = self.network.snap(points)
        slot = np.searchsorted(self.place_nodes, nodes)
        slot = np.minimum(slot, self.place_nodes.size - 1)
        slot = np.where(self.place_nodes[slot] == nodes, slot, -1)
        return np.column_stack([slot.astype(np.float64), sphere])

    def distance_km(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Road distance between embedded points, broadcasting over leading axes."""
        if self.on_roads:
            return self._on_roads(a, b, self.road_km)
        return self._formula_km(a, b)

    def pace_km(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The km that set a leg's time (times :meth:`minutes_per_km`): the distance on the
        formula; on roads, the km the free-flow speed covers in the route's free-flow time."""
        if self.on_roads:
            return self._on_roads(a, b, self.road_pace_km)
        return self._formula_km(a, b)

    def _formula_km(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        diff = a - b
        length = np.sqrt(np.einsum("...k,...k->...", diff, diff))
        if self.coords == "xy":
            return length
        return (2.0 * EARTH_RADIUS_KM * self.detour) * np.arcsin(np.minimum(length * 0.5, 1.0))

    def _on_roads(self, a: np.ndarray, b: np.ndarray, table: np.ndarray) -> np.ndarray:
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        slot_a = a[..., 0].astype(np.int64)
        slot_b = b[..., 0].astype(np.int64)
        known = (slot_a >= 0) & (slot_b >= 0)
        routed = table[np.where(known, slot_a, 0), np.where(known, slot_b, 0)].astype(np.float64)
        if known.all():
            return routed
        return np.where(known, routed, self._formula_km(a[..., 1:], b[..., 1:]))

    def minutes_per_km(self, at_min: np.ndarray) -> np.ndarray:
        """Minutes one km takes in the hour containing minute ``at_min`` of the day."""
        hours = np.floor(self.start_hour + np.asarray(at_min, dtype=np.float64) / 60.0)
        factors = self.hourly_speed_factor[hours.astype(np.int64) % 24]
        return 60.0 / (self.speed_kmh * factors)
