"""Live bookings and drivers as the state a :class:`~rldispatch.env.DispatchEnv` would see.

A live request is a snapshot of the day at *now*: every time is in minutes from now (now is
minute 0), the fleet's drivers have empty plans (a busy driver is described by where and when
it will be free: ``Driver.start`` and ``Driver.shift[0]``), every open booking is released.
:func:`snapshot_scenario` writes that snapshot as a :class:`~rldispatch.domain.Scenario`;
:class:`LiveSnapshot` computes from it, directly with NumPy, what ``DispatchEnv.reset`` on that
scenario would compute (visible slots, feasibility and insertion costs, action mask,
observation) at a fraction of the cost. ``tests/service/test_snapshot.py`` checks the two
agree.

Two features the snapshot scenario cannot carry come from the request: rides done today
(``4i + 3``) and the time of day (``4D + 4M``), the minute of the clock day against the
service day of :class:`LiveDay`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rldispatch.domain import (
    LATE_AFTER_REQUESTED_MIN,
    Booking,
    Coords,
    Driver,
    Scenario,
    TravelConfig,
)
from rldispatch.env import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    KM_PER_DEGREE_LAT,
    KM_PER_DEGREE_LON_EQUATOR,
    POSITION_SCALE_KM,
    EnvConfig,
)
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.simulator import FEASIBILITY_TOLERANCE_MIN, LATE_COST_KM_PER_MIN
from rldispatch.sim.travel import TravelModel

MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class LiveDay:
    """The service day live requests fall in: its travel model and its clock.

    ``travel.start_hour`` is the clock hour the service day starts at and ``horizon_min`` its
    length; the time-of-day feature is the share of that day gone by.
    """

    travel: TravelConfig
    horizon_min: float
    coords: Coords = "latlon"

    @classmethod
    def from_preset(cls, preset: str | None) -> LiveDay:
        """The travel model and day length of a preset (``geneva`` when unknown)."""
        try:
            day = make_preset(preset or "geneva", 0)
        except ValueError:
            day = make_preset("geneva", 0)
        return cls(travel=day.travel, horizon_min=float(day.horizon_min), coords=day.coords)

    def time_of_day_fraction(self, minute_of_day: float) -> float:
        """Share of the service day gone by at ``minute_of_day`` (0 before the day starts)."""
        return max(minute_of_day - self.travel.start_hour * 60.0, 0.0) / self.horizon_min

    def travel_at(self, minute_of_day: float) -> TravelConfig:
        """The travel model of a snapshot taken at ``minute_of_day`` (minute 0 = now)."""
        return replace(self.travel, start_hour=minute_of_day / 60.0)


@dataclass(frozen=True)
class LiveRequest:
    """One booking to place, the candidate drivers and the other open bookings, at now.

    :param booking: the booking to place; times in minutes from now, ``release_min`` 0.
    :param drivers: candidates; ``start`` is where the driver will be free, ``shift`` is
        ``(minutes until it is free, minutes until its shift ends)``.
    :param minute_of_day: the clock now, minutes after midnight.
    :param open_bookings: the other bookings not yet given to anyone (the booking itself, if
        listed, is skipped).
    :param rides_today: rides each driver has done today, in driver order (default zeros).
    """

    booking: Booking
    drivers: tuple[Driver, ...]
    minute_of_day: float
    open_bookings: tuple[Booking, ...] = ()
    rides_today: tuple[int, ...] | None = None

    def all_bookings(self) -> tuple[Booking, ...]:
        """The booking to place first, then the other open bookings."""
        others = tuple(b for b in self.open_bookings if b.id != self.booking.id)
        return (self.booking, *others)


def snapshot_scenario(
    request: LiveRequest, day: LiveDay, bookings: tuple[Booking, ...] | None = None
) -> Scenario:
    """The request as a scenario starting now (validated like every scenario)."""
    bookings = request.all_bookings() if bookings is None else bookings
    latest_end = max(
        max(d.shift[1] for d in request.drivers), max(b.window[1] for b in bookings), 0.0
    )
    return Scenario(
        name="live",
        coords=day.coords,
        horizon_min=latest_end + 1.0,
        drivers=request.drivers,
        bookings=bookings,
        travel=day.travel_at(request.minute_of_day),
    )


@dataclass(frozen=True)
class _TravelSource:
    """What :class:`TravelModel` reads from a scenario."""

    coords: Coords
    travel: TravelConfig


class LiveSnapshot:
    """The env state of a live request: visible slots, feasibility, costs, mask, observation.

    Booking 0 is the booking to place. Feasibility and costs cover the whole fleet; the mask
    and the observation need the fleet to fit the env's driver slots.
    """

    def __init__(self, request: LiveRequest, day: LiveDay, config: EnvConfig) -> None:
        self.request = request
        self.config = config
        self.day = day
        bookings = request.all_bookings()
        drivers = request.drivers
        self.n_drivers = len(drivers)
        travel = TravelModel(_TravelSource(day.coords, day.travel_at(request.minute_of_day)))
        pickup_xy = np.array([b.pickup for b in bookings], dtype=np.float64)
        dropoff_xy = np.array([b.dropoff for b in bookings], dtype=np.float64)
        times = np.array(
            [
                (b.window[0], b.window[1], b.requested_min, b.service_min, b.priority, b.load)
                for b in bookings
            ],
            dtype=np.float64,
        )
        earliest, latest, requested, service = times[:, 0], times[:, 1], times[:, 2], times[:, 3]
        start_xy = np.array([d.start for d in drivers], dtype=np.float64)
        shifts = np.array([(d.shift[0], d.shift[1], d.capacity) for d in drivers], dtype=np.float64)

        # Open (window not closed) and visible (window opens within the lookahead), by deadline.
        candidates = np.flatnonzero((latest >= 0.0) & (earliest <= config.lookahead_min))
        self.all_visible = candidates[np.lexsort((candidates, latest[candidates]))]
        self.visible = self.all_visible[: config.visible_slots]
        slots = np.flatnonzero(self.visible == 0)
        self.booking_slot = int(slots[0]) if slots.size else -1

        # Cheapest insertion into an empty plan: drive from where the driver is free.
        visible = self.visible
        minutes_per_km = travel.minutes_per_km(requested[visible])
        k = visible.size
        vectors = travel.embed(np.concatenate([pickup_xy[visible], dropoff_xy[visible], start_xy]))
        pickup_vec, dropoff_vec, start_vec = vectors[:k], vectors[k : 2 * k], vectors[2 * k :]
        ride_km = travel.distance_km(pickup_vec, dropoff_vec)
        to_pickup_km = travel.distance_km(start_vec[:, None, :], pickup_vec[None, :, :])
        free_min = np.maximum(shifts[:, 0], 0.0)
        start = np.maximum(
            free_min[:, None] + to_pickup_km * minutes_per_km, earliest[visible][None, :]
        )
        complete = start + 2.0 * service[visible] + ride_km * minutes_per_km
        tolerance = FEASIBILITY_TOLERANCE_MIN
        self.feasible = (
            (start <= latest[visible] + tolerance)
            & (times[visible, 5][None, :] <= shifts[:, 2][:, None])
            & (complete <= shifts[:, 1][:, None] + tolerance)
        )
        self.added_km = to_pickup_km + ride_km
        late_min = np.maximum(start - requested[visible] - LATE_AFTER_REQUESTED_MIN, 0.0)
        self.cost = np.where(self.feasible, self.added_km + LATE_COST_KM_PER_MIN * late_min, np.inf)
        self.pickup_min = start

        self._free_min = free_min
        self._latest = latest
        self._priority = times[:, 4]
        points = np.concatenate([pickup_xy, dropoff_xy, start_xy])
        self._centre = points.mean(axis=0)
        self._pickup_xy = pickup_xy
        self._start_xy = start_xy

    def booking_feasible(self) -> np.ndarray:
        """Which drivers can serve the booking to place (all False when it is not visible)."""
        if self.booking_slot < 0:
            return np.zeros(self.n_drivers, dtype=bool)
        return self.feasible[:, self.booking_slot]

    def booking_actions(self) -> np.ndarray:
        """Action ``1 + i * M + slot`` of each driver ``i`` for the booking to place."""
        return 1 + np.arange(self.n_drivers) * self.config.visible_slots + self.booking_slot

    def action_mask(self) -> np.ndarray:
        """The env's action mask."""
        config = self.config
        mask = np.zeros(config.n_actions, dtype=bool)
        mask[0] = True
        grid = np.zeros((config.max_drivers, config.visible_slots), dtype=bool)
        grid[: self.n_drivers, : self.visible.size] = self.feasible
        mask[1:] = grid.reshape(-1)
        return mask

    def _to_frame(self, xy: np.ndarray) -> np.ndarray:
        centre = self._centre
        if self.day.coords == "latlon":
            scale = np.array(
                [KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON_EQUATOR * np.cos(np.radians(centre[0]))]
            )
            return ((xy - centre) * scale / POSITION_SCALE_KM)[..., ::-1]
        return (xy - centre) / POSITION_SCALE_KM

    def observation(self) -> np.ndarray:
        """The env's observation (float32, as in the ``DispatchEnv`` docstring)."""
        config = self.config
        n = self.n_drivers
        drivers = np.zeros((config.max_drivers, DRIVER_FEATURES), dtype=np.float32)
        drivers[:n, 0:2] = self._to_frame(self._start_xy)
        drivers[:n, 2] = self._free_min / 60.0
        if self.request.rides_today is not None:
            drivers[:n, 3] = np.asarray(self.request.rides_today, dtype=np.float64) / 10.0
        bookings = np.zeros((config.visible_slots, BOOKING_FEATURES), dtype=np.float32)
        visible = self.visible
        k = visible.size
        if k:
            bookings[:k, 0:2] = self._to_frame(self._pickup_xy[visible])
            bookings[:k, 2] = np.maximum(self._latest[visible], 0.0) / 60.0
            bookings[:k, 3] = self._priority[visible]
        time_fraction = self.day.time_of_day_fraction(self.request.minute_of_day)
        global_features = np.array(
            [time_fraction, self.all_visible.size / config.visible_slots], dtype=np.float32
        )
        return np.concatenate([drivers.reshape(-1), bookings.reshape(-1), global_features])
