"""An uncertain day: legs that take longer or shorter than planned, service that overruns,
patients who are not there.

Plans are made with the planned times; what happens is drawn, once per day and booking, from
a seeded generator (the seed and the day's name), so every policy playing a day meets the
same realised day (paired comparisons stay paired). For booking ``b``:

- ``travel_factor[b]``: the drive to its pickup and its ride take ``travel_factor[b]`` times
  their planned minutes (log-normal, mean 1, coefficient of variation ``travel_cv``);
- ``service_factor[b]``: its service at each stop takes ``service_factor[b]`` times the
  planned minutes, never less (``1 + service_delay_cv * |Z|``, ``Z`` standard normal);
- ``no_show[b]``: the patient is not there (probability ``no_show_rate``): the driver waits
  the service time at the pickup and leaves from there; the booking ends as a no-show,
  neither served nor cancelled.

A policy sees only plans and what has happened: a leg's realised time is known once the
driver has set off, a no-show once the driver has waited at the pickup.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from rldispatch.domain import Scenario

MAX_TRAVEL_CV = 2.0
MAX_SERVICE_DELAY_CV = 5.0


@dataclass(frozen=True)
class Uncertainty:
    """How uncertain a day is; all zero (the default) is the certain day.

    :param travel_cv: coefficient of variation of each leg's realised over planned time.
    :param no_show_rate: probability that a patient is not at the pickup.
    :param service_delay_cv: scale of the service-time overrun (service only gets longer).
    :param seed: the seed of the draws (with the day's name).
    """

    travel_cv: float = 0.0
    no_show_rate: float = 0.0
    service_delay_cv: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            ("travel_noise", self.travel_cv, 0.0, MAX_TRAVEL_CV),
            ("no_show_rate", self.no_show_rate, 0.0, 1.0),
            ("service_delay", self.service_delay_cv, 0.0, MAX_SERVICE_DELAY_CV),
        )
        for name, value, low, high in checks:
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name}: must be a number in [{low:g}, {high:g}], got {value}")

    @property
    def active(self) -> bool:
        """True when anything is drawn (a certain day otherwise)."""
        return bool(self.travel_cv or self.no_show_rate or self.service_delay_cv)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DayDraws:
    """What happens on one day, per booking (see the module docstring)."""

    travel_factor: np.ndarray
    service_factor: np.ndarray
    no_show: np.ndarray


def day_draws(uncertainty: Uncertainty, scenario: Scenario) -> DayDraws:
    """The day's draws; the same for every policy (seeded by the seed and the day's name).
    Every kind of draw is made whatever the settings, so changing one setting leaves the
    others' draws as they were."""
    rng = np.random.default_rng([uncertainty.seed, zlib.crc32(scenario.name.encode())])
    count = len(scenario.bookings)
    travel_z = rng.standard_normal(count)
    service_z = rng.standard_normal(count)
    show_u = rng.random(count)
    sigma = math.sqrt(math.log1p(uncertainty.travel_cv**2))
    return DayDraws(
        travel_factor=np.exp(sigma * travel_z - sigma**2 / 2.0),
        service_factor=1.0 + uncertainty.service_delay_cv * np.abs(service_z),
        no_show=show_u < uncertainty.no_show_rate,
    )


def realised_day(scenario: Scenario, draws: DayDraws) -> tuple[Scenario, np.ndarray, np.ndarray]:
    """The day as it happened, for a hindsight plan: the bookings whose patients were there,
    with their realised service times; their travel factors; and their indices in
    ``scenario``."""
    shown = np.flatnonzero(~draws.no_show)
    bookings = tuple(
        replace(
            scenario.bookings[k],
            service_min=float(scenario.bookings[k].service_min * draws.service_factor[k]),
        )
        for k in shown.tolist()
    )
    return replace(scenario, bookings=bookings), draws.travel_factor[shown], shown
