"""Reward weights of a dispatch day, in one place.

The defaults follow the first prototype: a bonus per assignment, penalties per late pickup, per
cancellation, per km driven and for waiting while work was possible, and a bonus for a
balanced workload between drivers at the end of the day.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class RewardConfig:
    assignment_bonus: float = 10.0
    late_pickup_penalty: float = 5.0
    cancellation_penalty: float = 10.0
    km_cost: float = 0.1
    idle_wait_penalty: float = 1.0
    balance_bonus: float = 20.0
    """Paid at the end of the day times ``1 - cv``, cv the coefficient of variation of rides
    per driver (clipped at zero)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"reward.{name}: must be a finite number >= 0, got {value!r}")

    def balance_reward(self, rides_per_driver: np.ndarray) -> float:
        rides = np.asarray(rides_per_driver, dtype=np.float64)
        mean = rides.mean() if rides.size else 0.0
        if mean <= 0:
            return 0.0
        return self.balance_bonus * max(0.0, 1.0 - float(rides.std() / mean))

    def day_reward(
        self,
        assigned: int,
        late_pickups: int,
        cancelled: int,
        distance_km: float,
        rides_per_driver: np.ndarray,
        idle_waits: int = 0,
    ) -> float:
        """The total reward of a day from its counts; the env pays the same sum step by step."""
        return (
            self.assignment_bonus * assigned
            - self.late_pickup_penalty * late_pickups
            - self.cancellation_penalty * cancelled
            - self.km_cost * distance_km
            - self.idle_wait_penalty * idle_waits
            + self.balance_reward(rides_per_driver)
        )
