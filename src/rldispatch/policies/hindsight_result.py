"""What the hindsight solver returns: a day's routes, their cost and the simulator's figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.rewards import RewardConfig
from rldispatch.sim.metrics import DayMetrics

StopKind = Literal["pickup", "dropoff"]


@dataclass(frozen=True)
class Stop:
    """One stop of a route: the booking, pickup or drop-off, and when service starts."""

    booking: str
    kind: StopKind
    time_min: float

    def to_dict(self) -> dict[str, Any]:
        return {"booking": self.booking, "kind": self.kind, "time_min": self.time_min}


@dataclass(frozen=True)
class HindsightResult:
    """What the hindsight solver found.

    ``cost`` is the total distance in the scenario's units (km, or Euclidean units on a
    Cordeau instance); ``routes[k]`` are the stops of vehicle ``vehicles[k]``, in order;
    ``dropped`` are the bookings left unserved (cancelled).
    """

    name: str
    feasible: bool
    cost: float
    metrics: DayMetrics | None
    routes: tuple[tuple[Stop, ...], ...]
    vehicles: tuple[str, ...]
    dropped: tuple[str, ...]
    solve_time_s: float
    status: str
    objective: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vehicles_used(self) -> int:
        return sum(1 for route in self.routes if route)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: feasible, cost, metrics and routes, plus how the solve went."""
        return {
            "name": self.name,
            "feasible": self.feasible,
            "cost": self.cost if math.isfinite(self.cost) else None,
            "metrics": None if self.metrics is None else self.metrics.as_dict(),
            "routes": [
                {"vehicle": vehicle, "stops": [stop.to_dict() for stop in route]}
                for vehicle, route in zip(self.vehicles, self.routes, strict=True)
            ],
            "dropped": list(self.dropped),
            "vehicles_used": self.vehicles_used,
            "objective": self.objective,
            "solve_time_s": self.solve_time_s,
            "status": self.status,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"Hindsight solution of {self.name}",
            "=" * (24 + len(self.name)),
            f"# routes: {self.vehicles_used} of {len(self.routes)}",
            f"# dropped: {len(self.dropped)}",
            f"   feasible: {self.feasible}",
            f"       cost: {self.cost:.2f}",
            f"     status: {self.status}",
            f" solve time: {self.solve_time_s:.2f} s",
        ]
        if self.metrics is not None:
            metrics = self.metrics
            lines += [
                "",
                "Metrics",
                "-------",
                f"         reward: {metrics.reward:.2f}",
                f"completion rate: {metrics.completion_rate:.3f}"
                f" ({metrics.served}/{metrics.bookings})",
                f"    late pickup: {metrics.late_pickup_rate:.3f}",
                f"    distance km: {metrics.distance_km:.2f} (empty {metrics.empty_km:.2f})",
                f"   pickup delay: mean {metrics.pickup_delay_mean_min:.2f} min,"
                f" p95 {metrics.pickup_delay_p95_min:.2f} min",
                f"       load gap: {metrics.load_gap}",
            ]
        lines += ["", "Routes", "------"]
        for vehicle, route in zip(self.vehicles, self.routes, strict=True):
            if route:
                visits = " ".join(
                    f"{'+' if stop.kind == 'pickup' else '-'}{stop.booking}" for stop in route
                )
                lines.append(f"{vehicle}: {visits}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def day_metrics(
    requested_min: np.ndarray,
    pickup_min: np.ndarray,
    served: np.ndarray,
    distance_km: float,
    loaded_km: float,
    rides_per_driver: np.ndarray,
    reward: RewardConfig,
) -> DayMetrics:
    """The simulator's figures of a day, from a finished schedule."""
    n_bookings = int(requested_min.size)
    n_served = int(served.sum())
    pickups = pickup_min[served]
    requested = requested_min[served]
    delays = np.maximum(pickups - requested, 0.0)
    late = int(np.sum(pickups > requested + LATE_AFTER_REQUESTED_MIN))
    cancelled = n_bookings - n_served
    rides = np.asarray(rides_per_driver, dtype=np.int64)
    return DayMetrics(
        reward=float(
            reward.day_reward(
                assigned=n_served,
                late_pickups=late,
                cancelled=cancelled,
                distance_km=distance_km,
                rides_per_driver=rides,
            )
        ),
        completion_rate=n_served / max(n_bookings, 1),
        late_pickup_rate=late / n_served if n_served else 0.0,
        cancelled=cancelled,
        distance_km=float(distance_km),
        empty_km=max(float(distance_km) - float(loaded_km), 0.0),
        pickup_delay_mean_min=float(delays.mean()) if n_served else 0.0,
        pickup_delay_p95_min=float(np.percentile(delays, 95)) if n_served else 0.0,
        load_gap=int(rides.max() - rides.min()) if rides.size else 0,
        decisions=0,
        bookings=n_bookings,
        served=n_served,
    )
