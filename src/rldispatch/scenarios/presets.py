"""Synthetic service days, seeded.

``geneva`` (the default) is a weekday of patient transport around Geneva: most bookings are
made ahead for appointments (home to clinic in the morning, clinic to home in the afternoon),
about 15% are urgent and released at short notice, rush hours are slower. ``classic`` has the
shapes of the company's first prototype: 10 drivers on one long shift, on-demand bookings
spread evenly over the day. ``geneva-mix`` is the geneva day with a patient-transport fleet and
demand: places by kind, shared rides, ride limits and breaks (:func:`make_geneva_mix`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rldispatch.domain import Booking, Break, Driver, Places, Scenario, TravelConfig

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


def _homes(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` home addresses scattered around the city centre, as (lat, lon) rows."""
    lat = np.clip(GENEVA_CENTRE[0] + rng.normal(0.0, 0.022, count), 46.13, 46.30)
    lon = np.clip(GENEVA_CENTRE[1] + rng.normal(0.0, 0.032, count), 5.97, 6.30)
    return np.round(np.stack([lat, lon], axis=1), 5)


def _appointment_minutes(rng: np.random.Generator, count: int, horizon_min: float) -> np.ndarray:
    """Pickup times that cluster in a morning and an afternoon peak."""
    kind = rng.random(count)
    minute = np.where(
        kind < 0.4,
        rng.normal(180.0, 90.0, count),  # around 09:00
        np.where(
            kind < 0.75,
            rng.normal(510.0, 100.0, count),  # around 14:30
            rng.uniform(30.0, horizon_min - 90.0, count),
        ),
    )
    return np.clip(minute, 30.0, horizon_min - 90.0)


def _bookings(
    pickup: np.ndarray,
    dropoff: np.ndarray,
    release: np.ndarray,
    requested: np.ndarray,
    window: np.ndarray,
    service_min: float,
    priority: np.ndarray,
    load: np.ndarray,
) -> tuple[Booking, ...]:
    """Bookings from columns, sorted by requested time and numbered in that order."""
    order = np.argsort(requested, kind="stable")
    columns = (
        pickup[order].tolist(),
        dropoff[order].tolist(),
        np.round(release[order], 2).tolist(),
        np.round(requested[order], 2).tolist(),
        np.round(window[order], 2).tolist(),
        priority[order].tolist(),
        load[order].tolist(),
    )
    return tuple(
        Booking(
            id=f"b{index + 1}",
            release_min=rel,
            pickup=tuple(pick),
            dropoff=tuple(drop),
            requested_min=req,
            window=tuple(win),
            service_min=service_min,
            priority=prio,
            load=seats,
        )
        for index, (pick, drop, rel, req, win, prio, seats) in enumerate(zip(*columns, strict=True))
    )


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
    n = int(rng.integers(config.min_bookings, config.max_bookings + 1))
    horizon = config.horizon_min
    clinic_weights = np.array([0.35, 0.12, 0.12, 0.12, 0.1, 0.1, 0.09])
    clinic = np.asarray(GENEVA_CLINICS)[rng.choice(len(GENEVA_CLINICS), size=n, p=clinic_weights)]
    home = _homes(rng, n)
    urgent = rng.random(n) < config.urgent_share
    # Urgent bookings: any time of day, known 15-45 minutes ahead, either direction.
    urgent_requested = rng.uniform(20.0, horizon - 60.0, n)
    urgent_release = np.maximum(0.0, urgent_requested - rng.uniform(15.0, 45.0, n))
    # Appointments: booked ahead; home to clinic in the morning, back in the afternoon.
    appointment = _appointment_minutes(rng, n, horizon)
    requested = np.where(urgent, urgent_requested, appointment)
    release = np.where(urgent, urgent_release, 0.0)
    window = np.stack(
        [
            np.where(urgent, urgent_release, np.maximum(0.0, appointment - 10.0)),
            requested + np.where(urgent, 30.0, 25.0),
        ],
        axis=1,
    )
    usual_direction = rng.random(n) < np.where(urgent, 0.5, 0.85)
    from_home = usual_direction == (urgent | (appointment < 360.0))
    pickup = np.where(from_home[:, None], home, clinic)
    dropoff = np.where(from_home[:, None], clinic, home)
    load = np.where(rng.random(n) < 0.05, 2, 1)
    bookings = _bookings(
        pickup, dropoff, release, requested, window, 3.0, urgent.astype(np.int64), load
    )
    return Scenario(
        name=f"geneva-{seed}",
        coords="latlon",
        horizon_min=config.horizon_min,
        drivers=_geneva_drivers(rng, config),
        bookings=bookings,
        travel=TravelConfig(
            speed_kmh=config.speed_kmh,
            detour=config.detour,
            start_hour=config.start_hour,
            hourly_speed_factor=GENEVA_SPEED_FACTOR,
        ),
    )


def make_classic(seed: int) -> Scenario:
    """The first prototype's day: 10 drivers all day, 260-320 on-demand bookings (a busy day)."""
    rng = np.random.default_rng(seed)
    horizon = 720.0
    n = int(rng.integers(260, 321))
    requested = rng.uniform(30.0, horizon - 60.0, n)
    release = np.maximum(0.0, requested - rng.uniform(20.0, 60.0, n))
    window = np.stack([release, requested + 20.0], axis=1)
    bookings = _bookings(
        _homes(rng, n),
        _homes(rng, n),
        release,
        requested,
        window,
        2.0,
        (rng.random(n) < 0.1).astype(np.int64),
        np.ones(n, dtype=np.int64),
    )
    starts = _homes(rng, 10).tolist()
    drivers = tuple(
        Driver(id=f"d{i + 1}", start=tuple(starts[i]), shift=(0.0, horizon), capacity=1)
        for i in range(10)
    )
    return Scenario(
        name=f"classic-{seed}",
        coords="latlon",
        horizon_min=horizon,
        drivers=drivers,
        bookings=bookings,
        travel=TravelConfig(speed_kmh=30.0, detour=1.3, start_hour=7.0),
    )


LAUSANNE_CENTRE = (46.5197, 6.6323)
LAUSANNE_CLINICS = (
    (46.5253, 6.6421),  # university hospital
    (46.5338, 6.6214),
    (46.5093, 6.6270),
    (46.5400, 6.6580),
    (46.5160, 6.5830),
)
LAUSANNE_GARAGES = ((46.5330, 6.6000), (46.5150, 6.6480), (46.5420, 6.6400))
LAUSANNE_SPEED_FACTOR = tuple(
    {6: 0.8, 7: 0.6, 8: 0.6, 11: 0.8, 12: 0.75, 13: 0.8, 16: 0.7, 17: 0.6, 18: 0.7}.get(hour, 0.95)
    for hour in range(24)
)


@dataclass(frozen=True)
class LausanneConfig:
    n_drivers: int = 12
    min_bookings: int = 205
    max_bookings: int = 230
    urgent_share: float = 0.35
    start_hour: float = 6.5
    horizon_min: float = 780.0
    speed_kmh: float = 26.0
    detour: float = 1.45


def make_lausanne(seed: int, config: LausanneConfig | None = None) -> Scenario:
    """An overloaded day in a hilly lakeside city (Lausanne): slower streets, a third of the
    bookings urgent, demand spread over the day with a midday peak, tighter windows, and
    more bookings than the fleet can serve (no policy completes 90% of them). Training
    never draws this preset: it tests policies on a city and a demand they never saw."""
    config = config or LausanneConfig()
    rng = np.random.default_rng([seed, 4611])
    n = int(rng.integers(config.min_bookings, config.max_bookings + 1))
    horizon = config.horizon_min
    clinic = np.asarray(LAUSANNE_CLINICS)[
        rng.choice(len(LAUSANNE_CLINICS), size=n, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    ]
    lat = np.clip(LAUSANNE_CENTRE[0] + rng.normal(0.0, 0.016, n), 46.49, 46.60)
    lon = np.clip(LAUSANNE_CENTRE[1] + rng.normal(0.0, 0.035, n), 6.50, 6.80)
    home = np.round(np.stack([lat, lon], axis=1), 5)
    urgent = rng.random(n) < config.urgent_share
    minute = np.where(
        rng.random(n) < 0.5,
        rng.normal(360.0, 120.0, n),  # a midday peak
        rng.uniform(20.0, horizon - 60.0, n),
    )
    requested = np.clip(minute, 20.0, horizon - 60.0)
    release = np.where(urgent, np.maximum(0.0, requested - rng.uniform(10.0, 40.0, n)), 0.0)
    window = np.stack(
        [
            np.where(urgent, release, np.maximum(0.0, requested - 5.0)),
            requested + np.where(urgent, 25.0, 20.0),
        ],
        axis=1,
    )
    from_home = rng.random(n) < np.where(requested < 390.0, 0.75, 0.3)
    pickup = np.where(from_home[:, None], home, clinic)
    dropoff = np.where(from_home[:, None], clinic, home)
    load = np.where(rng.random(n) < 0.08, 2, 1)
    bookings = _bookings(
        pickup, dropoff, release, requested, window, 4.0, urgent.astype(np.int64), load
    )
    shifts = ((0, 480), (120, 600), (240, 720), (300, 780))
    drivers = tuple(
        Driver(
            id=f"l{index + 1}",
            start=LAUSANNE_GARAGES[index % len(LAUSANNE_GARAGES)],
            shift=(float(shifts[index % 4][0]), float(min(shifts[index % 4][1], horizon))),
            capacity=2 if index % 4 == 0 else 1,
        )
        for index in range(config.n_drivers)
    )
    return Scenario(
        name=f"lausanne-{seed}",
        coords="latlon",
        horizon_min=horizon,
        drivers=drivers,
        bookings=bookings,
        travel=TravelConfig(
            speed_kmh=config.speed_kmh,
            detour=config.detour,
            start_hour=config.start_hour,
            hourly_speed_factor=LAUSANNE_SPEED_FACTOR,
        ),
    )


@dataclass(frozen=True)
class MixConfig:
    """The assumptions of ``geneva-mix`` (see :func:`make_geneva_mix`)."""

    wheelchair_share: float = 0.10
    stretcher_share: float = 0.02
    companion_share: float = 0.30
    max_ride_min: float = 60.0
    break_after_shift_min: float = 360.0
    break_duration_min: float = 30.0
    break_earliest_after_min: float = 180.0
    break_latest_after_min: float = 300.0


MIX_VEHICLES = {
    0: Places(seated=4, wheelchair=1),
    5: Places(seated=4, wheelchair=1),
    3: Places(seated=2, stretcher=1),
}
"""Vehicles by position in each ten of the fleet: two wheelchair vans and an ambulance with a
stretcher; positions 1 and 6 are minibuses of 4 to 8 seats, the others cars of 3 seats."""
MIX_MINIBUSES = (1, 6)
MIX_CAR_SEATS = 3


def make_geneva_mix(seed: int, config: MixConfig | None = None) -> Scenario:
    """The geneva day ``seed`` (the same bookings, drivers and shifts) with a patient-transport
    fleet and demand, from a second generator so geneva's own draws are untouched:

    - a tenth of the bookings need a wheelchair place (three in ten of them with a seated
      companion), one in fifty a stretcher, the others keep geneva's seats (one, or two for a
      patient with a companion);
    - two vehicles in ten are vans with a wheelchair place and 4 seats, one in ten an
      ambulance with a stretcher and 2 seats, two in ten minibuses of 4 to 8 seats for clinic
      runs, the rest cars of 3 seats;
    - rides are shared, and nobody stays on board longer than an hour (a direct ride across
      Geneva takes 15 to 35 minutes);
    - a shift over 6 hours has a 30-minute break starting 3 to 5 hours into it (a simplified
      reading of the Swiss rules for professional drivers: a break within the first 5.5 hours).
    """
    config = config or MixConfig()
    day = make_geneva(seed)
    rng = np.random.default_rng([seed, 2201])
    draw = rng.random(len(day.bookings))
    companion = rng.random(len(day.bookings)) < config.companion_share
    bookings = []
    for booking, u, with_companion in zip(day.bookings, draw, companion, strict=True):
        if u < config.stretcher_share:
            load = Places(stretcher=1)
        elif u < config.stretcher_share + config.wheelchair_share:
            load = Places(seated=int(with_companion), wheelchair=1)
        else:
            load = booking.load
        bookings.append(replace(booking, load=load, max_ride_min=config.max_ride_min))
    drivers = []
    for index, driver in enumerate(day.drivers):
        slot = index % 10
        if slot in MIX_VEHICLES:
            capacity = MIX_VEHICLES[slot]
        elif slot in MIX_MINIBUSES:
            capacity = Places(seated=int(rng.integers(4, 9)))
        else:
            capacity = Places(seated=MIX_CAR_SEATS)
        start, end = driver.shift
        breaks = ()
        if end - start > config.break_after_shift_min:
            breaks = (
                Break(
                    start + config.break_earliest_after_min,
                    start + config.break_latest_after_min,
                    config.break_duration_min,
                ),
            )
        drivers.append(replace(driver, capacity=capacity, breaks=breaks))
    return replace(
        day,
        name=f"geneva-mix-{seed}",
        drivers=tuple(drivers),
        bookings=tuple(bookings),
        shared_rides=True,
    )


TRAINING_SEEDS = range(0, 1_000_000)
"""Day seeds that training draws from."""
TUNING_SEEDS = range(1_000_000, 2_000_000)
"""Day seeds of the auto-tuner's evaluation days."""
HELD_OUT_SEEDS = range(2_000_000, 3_000_000)
"""Day seeds of held-out evaluation days, never seen in training or tuning."""

PRESETS: dict[str, Callable[[int], Scenario]] = {
    "geneva": make_geneva,
    "geneva-mix": make_geneva_mix,
    "classic": make_classic,
    "lausanne": make_lausanne,
}


def make_preset(name: str, seed: int) -> Scenario:
    """The day ``seed`` of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](seed)
