"""Days for one policy that serves any fleet: a distribution to train on, days to test on.

The ``geneva`` preset is a day of 10 drivers and 120-145 bookings, about 13 bookings per
driver. :class:`FleetDayDistribution` varies that day: the fleet size (5 to 30 drivers, leaving
out the sizes kept for the held-out test), the demand (bookings per driver) and the share of
urgent bookings. Every day is a pure function of its index, so the same index gives the same
day on any machine:

- training days draw their day seed from ``TRAINING_SEEDS``,
- tuning days (model selection during training) from ``TUNING_SEEDS``,
- held-out days (:func:`held_out_days`) from ``HELD_OUT_SEEDS``, with the fleet sizes no
  training day has (7, 13 and 24 drivers) and the preset's own demand and urgent share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.scenarios.presets import (
    HELD_OUT_SEEDS,
    TRAINING_SEEDS,
    TUNING_SEEDS,
    GenevaConfig,
    make_geneva,
)

HELD_OUT_FLEET_SIZES = (7, 13, 24)
"""Fleet sizes no training or tuning day has."""
GENEVA_BOOKINGS_PER_DRIVER = (12.0, 14.5)
"""The geneva preset's demand: 120-145 bookings for 10 drivers."""
GENEVA_URGENT_SHARE = 0.15


def geneva_day(
    seed: int,
    n_drivers: int,
    bookings_per_driver: tuple[float, float] = GENEVA_BOOKINGS_PER_DRIVER,
    urgent_share: float = GENEVA_URGENT_SHARE,
) -> Scenario:
    """A geneva day with ``n_drivers`` drivers and demand scaled with the fleet."""
    low, high = bookings_per_driver
    config = GenevaConfig(
        n_drivers=int(n_drivers),
        min_bookings=max(1, int(round(low * n_drivers))),
        max_bookings=max(1, int(round(high * n_drivers))),
        urgent_share=float(urgent_share),
    )
    return make_geneva(int(seed), config)


@dataclass(frozen=True)
class FleetDayDistribution:
    """Geneva-style days with varied fleet, demand and urgent share.

    :param fleet_sizes: the drivers of a day are drawn uniformly from these.
    :param demand_factors: bookings per driver is the preset's ``(12, 14.5)`` times a factor
        drawn uniformly from this interval.
    :param urgent_shares: the urgent share is drawn uniformly from this interval.
    """

    fleet_sizes: tuple[int, ...] = field(
        default_factory=lambda: tuple(n for n in range(5, 31) if n not in HELD_OUT_FLEET_SIZES)
    )
    demand_factors: tuple[float, float] = (0.8, 1.25)
    urgent_shares: tuple[float, float] = (0.05, 0.3)

    def __post_init__(self) -> None:
        if not self.fleet_sizes or min(self.fleet_sizes) < 1:
            raise ValueError("fleet_sizes: needs at least one fleet size >= 1")
        low, high = self.demand_factors
        if not 0 < low <= high:
            raise ValueError("demand_factors: needs 0 < low <= high")
        low, high = self.urgent_shares
        if not 0 <= low <= high <= 1:
            raise ValueError("urgent_shares: needs 0 <= low <= high <= 1")

    @property
    def max_drivers(self) -> int:
        return max(self.fleet_sizes)

    def day(self, index: int, seeds: range = TRAINING_SEEDS) -> Scenario:
        """Day ``index`` of the distribution, its seed taken from ``seeds``."""
        seed = seeds[index % len(seeds)]
        rng = np.random.default_rng([seed, 7])
        n_drivers = int(rng.choice(self.fleet_sizes))
        factor = rng.uniform(*self.demand_factors)
        urgent = rng.uniform(*self.urgent_shares)
        low, high = GENEVA_BOOKINGS_PER_DRIVER
        scenario = geneva_day(seed, n_drivers, (low * factor, high * factor), urgent)
        return _renamed(scenario, f"fleet-{n_drivers}-{seed}")

    def days(self, start: int, count: int, seeds: range = TRAINING_SEEDS) -> list[Scenario]:
        return [self.day(index, seeds) for index in range(start, start + count)]

    def tuning_days(self, count: int) -> list[Scenario]:
        """Days for model selection, from ``TUNING_SEEDS``."""
        return self.days(0, count, TUNING_SEEDS)


def held_out_days(
    count: int = 50, fleet_sizes: Sequence[int] = HELD_OUT_FLEET_SIZES, start: int = 0
) -> list[Scenario]:
    """``count`` geneva days from ``HELD_OUT_SEEDS``, fleet sizes cycling through
    ``fleet_sizes``, with the preset's demand per driver and urgent share."""
    days = []
    for index in range(start, start + count):
        n_drivers = int(fleet_sizes[index % len(fleet_sizes)])
        seed = HELD_OUT_SEEDS[index]
        days.append(_renamed(geneva_day(seed, n_drivers), f"held-out-{n_drivers}-{seed}"))
    return days


def _renamed(scenario: Scenario, name: str) -> Scenario:
    return replace(scenario, name=name)
