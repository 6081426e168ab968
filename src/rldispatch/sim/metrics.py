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
    "occupancy",
    "shared_ride_share",
    "ride_time_ratio",
    "breaks_taken",
    "breaks_missed",
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
    occupancy: float = 0.0
    """Passengers on board per loaded km (km driven with somebody on board)."""
    shared_ride_share: float = 0.0
    """Share of the served bookings that shared the vehicle with another on part of the ride."""
    ride_time_ratio: float = 0.0
    """Mean ride time (end of the pickup to the start of the drop-off) over the direct time."""
    breaks_taken: int = 0
    breaks_missed: int = 0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
