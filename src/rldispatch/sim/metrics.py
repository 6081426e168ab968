"""The figures of one simulated day."""

from __future__ import annotations

from dataclasses import asdict, dataclass

METRIC_NAMES = (
    "reward",
    "completion_rate",
    "late_pickup_rate",
    "cancelled",
    "distance_km",
    "empty_km",
    "pickup_delay_mean_min",
    "pickup_delay_p95_min",
    "load_gap",
    "decisions",
)


@dataclass(frozen=True)
class DayMetrics:
    reward: float
    completion_rate: float
    late_pickup_rate: float
    cancelled: int
    distance_km: float
    empty_km: float
    pickup_delay_mean_min: float
    pickup_delay_p95_min: float
    load_gap: int
    decisions: int
    bookings: int
    served: int
    no_shows: int = 0
    """Bookings whose patient was not there (an uncertain day): neither served nor cancelled."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
