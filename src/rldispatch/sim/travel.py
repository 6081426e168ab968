"""Distances and travel times.

Latitude/longitude points are turned once into unit vectors on the sphere, so that the
great-circle (haversine) distance of many pairs is a few array operations:
``2 R asin(|u - v| / 2)``. Road distance is that times the detour factor. For ``xy`` scenarios
distance is Euclidean and one unit counts as one km.

A leg's speed is the free-flow speed times the hour-of-day factor of the hour in which the
booking the leg leads to is requested. Tying the speed to the booking rather than to the
moment of departure keeps travel times fixed per leg, so a delay never shortens a later leg
and the simulator's feasibility checks are exact.
"""

from __future__ import annotations

import numpy as np

from rldispatch.domain import Scenario

EARTH_RADIUS_KM = 6371.0088


class TravelModel:
    def __init__(self, scenario: Scenario) -> None:
        self.coords = scenario.coords
        travel = scenario.travel
        self.detour = travel.detour if scenario.coords == "latlon" else 1.0
        self.speed_kmh = travel.speed_kmh
        self.start_hour = travel.start_hour
        self.hourly_speed_factor = np.asarray(travel.hourly_speed_factor, dtype=np.float64)
        self.great_circle = scenario.coords == "latlon"
        self.scale_km = 2.0 * EARTH_RADIUS_KM * self.detour if self.great_circle else 1.0

    def embed(self, points: np.ndarray) -> np.ndarray:
        """Points ``(n, 2)`` to the vectors :meth:`distance_km` works on."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.coords == "xy":
            return points.copy()
        lat = np.radians(points[:, 0])
        lon = np.radians(points[:, 1])
        cos_lat = np.cos(lat)
        return np.stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)], axis=1)

    def distance_km(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Road distance between embedded points, broadcasting over leading axes."""
        diff = a - b
        length = np.sqrt(np.einsum("...k,...k->...", diff, diff))
        if self.coords == "xy":
            return length
        return (2.0 * EARTH_RADIUS_KM * self.detour) * np.arcsin(np.minimum(length * 0.5, 1.0))

    def minutes_per_km(self, at_min: np.ndarray) -> np.ndarray:
        """Minutes one km takes in the hour containing minute ``at_min`` of the day."""
        hours = np.floor(self.start_hour + np.asarray(at_min, dtype=np.float64) / 60.0)
        factors = self.hourly_speed_factor[hours.astype(np.int64) % 24]
        return 60.0 / (self.speed_kmh * factors)
