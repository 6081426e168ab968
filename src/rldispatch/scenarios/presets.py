"""Synthetic service days, seeded.

``geneva`` (the default) is a weekday of patient transport around Geneva: most bookings are
made ahead for appointments (home to clinic in the morning, clinic to home in the afternoon),
about 15% are urgent and released at short notice, rush hours are slower. ``classic`` has the
shapes of the company's first prototype: 10 drivers on one long shift, on-demand bookings
spread evenly over the day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rldispatch.domain import Booking, Driver, Scenario, TravelConfig

GENEVA_CENTRE = (46.2010, 6.1450)
GENEVA_CLINICS = (
    (46.1935, 6.1490),  # university hospital
    (46.2003, 6.1822),
    (46.2275, 6.0770),
    (46.1953, 6.1540),
    (46.2043, 6.2036),
    (46.1870, 6.1040),
    (46.2216, 6.1465),
)
GENEVA_GARAGES = ((46.2105, 6.1120), (46.1890, 6.1650))
# Rush hours are slower: free-flow speed times this factor, by hour of day.
GENEVA_SPEED_FACTOR = tuple(
    {7: 0.65, 8: 0.7, 9: 0.85, 12: 0.9, 16: 0.75, 17: 0.7, 18: 0.85}.get(hour, 1.0)
    for hour in range(24)
)


@dataclass(frozen=True)
class GenevaConfig:
    n_drivers: int = 10
    min_bookings: int = 120
    max_bookings: int = 145
    urgent_share: float = 0.15
    start_hour: float = 6.0
    horizon_min: float = 840.0
    speed_kmh: float = 35.0
    detour: float = 1.3


def _home(rng: np.random.Generator) -> tuple[float, float]:
    lat = GENEVA_CENTRE[0] + rng.normal(0.0, 0.022)
    lon = GENEVA_CENTRE[1] + rng.normal(0.0, 0.032)
    return (round(float(np.clip(lat, 46.13, 46.30)), 5), round(float(np.clip(lon, 5.97, 6.30)), 5))


def _appointment_minute(rng: np.random.Generator, horizon_min: float) -> float:
    """Pickup times cluster in a morning and an afternoon peak."""
    kind = rng.random()
    if kind < 0.4:
        minute = rng.normal(180.0, 90.0)  # around 09:00
    elif kind < 0.75:
        minute = rng.normal(510.0, 100.0)  # around 14:30
    else:
        minute = rng.uniform(30.0, horizon_min - 90.0)
    return float(np.clip(minute, 30.0, horizon_min - 90.0))


def _geneva_drivers(rng: np.random.Generator, config: GenevaConfig) -> tuple[Driver, ...]:
    shifts = ((0, 540), (60, 600), (120, 660), (240, 780), (300, 840), (30, 570), (180, 720))
    drivers = []
    for index in range(config.n_drivers):
        shift = shifts[index % len(shifts)]
        garage = GENEVA_GARAGES[index % len(GENEVA_GARAGES)]
        drivers.append(
            Driver(
                id=f"d{index + 1}",
                start=garage,
                shift=(float(shift[0]), float(min(shift[1], config.horizon_min))),
                capacity=2 if index % 3 == 0 else 1,
            )
        )
    return tuple(drivers)


def make_geneva(seed: int, config: GenevaConfig | None = None) -> Scenario:
    """One weekday of patient transport around Geneva."""
    config = config or GenevaConfig()
    rng = np.random.default_rng(seed)
    n_bookings = int(rng.integers(config.min_bookings, config.max_bookings + 1))
    clinic_weights = np.array([0.35, 0.12, 0.12, 0.12, 0.1, 0.1, 0.09])
    bookings = []
    for index in range(n_bookings):
        clinic = GENEVA_CLINICS[rng.choice(len(GENEVA_CLINICS), p=clinic_weights)]
        home = _home(rng)
        urgent = rng.random() < config.urgent_share
        if urgent:
            requested = float(rng.uniform(20.0, config.horizon_min - 60.0))
            release = max(0.0, requested - float(rng.uniform(15.0, 45.0)))
            window = (release, requested + 30.0)
            pickup, dropoff = (home, clinic) if rng.random() < 0.5 else (clinic, home)
        else:
            requested = _appointment_minute(rng, config.horizon_min)
            release = 0.0
            window = (max(0.0, requested - 10.0), requested + 25.0)
            morning = requested < 360.0
            pickup, dropoff = (home, clinic) if morning == (rng.random() < 0.85) else (clinic, home)
        bookings.append(
            Booking(
                id=f"b{index + 1}",
                release_min=round(release, 2),
                pickup=pickup,
                dropoff=dropoff,
                requested_min=round(requested, 2),
                window=(round(window[0], 2), round(window[1], 2)),
                service_min=3.0,
                priority=int(urgent),
                load=2 if rng.random() < 0.05 else 1,
            )
        )
    bookings.sort(key=lambda b: (b.requested_min, b.id))
    return Scenario(
        name=f"geneva-{seed}",
        coords="latlon",
        horizon_min=config.horizon_min,
        drivers=_geneva_drivers(rng, config),
        bookings=tuple(bookings),
        travel=TravelConfig(
            speed_kmh=config.speed_kmh,
            detour=config.detour,
            start_hour=config.start_hour,
            hourly_speed_factor=GENEVA_SPEED_FACTOR,
        ),
    )


def make_classic(seed: int) -> Scenario:
    """The first prototype's day: 10 drivers all day, ~100 on-demand bookings."""
    rng = np.random.default_rng(seed)
    horizon = 720.0
    n_bookings = int(rng.integers(90, 111))
    bookings = []
    for index in range(n_bookings):
        requested = float(rng.uniform(30.0, horizon - 60.0))
        release = max(0.0, requested - float(rng.uniform(20.0, 60.0)))
        bookings.append(
            Booking(
                id=f"b{index + 1}",
                release_min=round(release, 2),
                pickup=_home(rng),
                dropoff=_home(rng),
                requested_min=round(requested, 2),
                window=(round(release, 2), round(requested + 30.0, 2)),
                service_min=2.0,
                priority=int(rng.random() < 0.1),
                load=1,
            )
        )
    bookings.sort(key=lambda b: (b.requested_min, b.id))
    drivers = tuple(
        Driver(id=f"d{i + 1}", start=_home(rng), shift=(0.0, horizon), capacity=1)
        for i in range(10)
    )
    return Scenario(
        name=f"classic-{seed}",
        coords="latlon",
        horizon_min=horizon,
        drivers=drivers,
        bookings=tuple(bookings),
        travel=TravelConfig(speed_kmh=30.0, detour=1.3, start_hour=7.0),
    )


TRAINING_SEEDS = range(0, 1_000_000)
"""Day seeds that training draws from."""
TUNING_SEEDS = range(1_000_000, 2_000_000)
"""Day seeds of the auto-tuner's evaluation days."""
HELD_OUT_SEEDS = range(2_000_000, 3_000_000)
"""Day seeds of held-out evaluation days, never seen in training or tuning."""

PRESETS: dict[str, Callable[[int], Scenario]] = {"geneva": make_geneva, "classic": make_classic}


def make_preset(name: str, seed: int) -> Scenario:
    """The day ``seed`` of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](seed)
