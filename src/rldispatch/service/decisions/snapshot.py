"""A live request as the simulator state a policy sees in ``evaluate``.

A live request is the dispatcher's state at *now*: the fleet (each driver free of the work it
has set off for at a time and place, and its plan: the bookings it has been given but not set
off for, in order) and the open bookings, every time in minutes from now. :func:`live_env`
turns it, with :func:`rldispatch.sim.state.restore_day`, into a :class:`DispatchEnv` at that
moment of the service day (:class:`LiveDay`): the clock is the service day's, so the
time-of-day features are the simulator's, and positions are read around the request's area
centre (the day's centre in the simulator). ``tests/service/test_live_state.py`` checks that a
simulated day's state sent as a request gives the same env state at its real decisions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rldispatch.domain import (
    PLACE_KINDS,
    Booking,
    Break,
    Coords,
    Driver,
    Places,
    Scenario,
    TravelConfig,
)
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.columns import (
    BookingColumns,
    ColumnBookings,
    ColumnDrivers,
    DayColumns,
    DriverColumns,
)
from rldispatch.sim.frame import frame_centre
from rldispatch.sim.state import restore_day, restore_stop_day
from rldispatch.sim.stop_kernels import BREAK, DROPOFF, PICKUP
from rldispatch.sim.travel import TravelModel

MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class LiveDay:
    """The service day live requests fall in: its travel model, clock and area.

    ``travel.start_hour`` is the clock hour the service day starts at and ``horizon_min`` its
    length; ``centre`` is the default reference point of positions (a preset's centre).
    """

    travel: TravelConfig
    horizon_min: float
    coords: Coords = "latlon"
    centre: tuple[float, float] = (46.2044, 6.1432)

    @classmethod
    def from_preset(cls, preset: str | None) -> LiveDay:
        """The travel model, day length and centre of a preset (``geneva`` when unknown)."""
        try:
            day = make_preset(preset or "geneva", 0)
        except ValueError:
            day = make_preset("geneva", 0)
        points = [b.pickup for b in day.bookings] + [b.dropoff for b in day.bookings]
        points += [d.start for d in day.drivers]
        centre = frame_centre(np.array(points))
        return cls(
            travel=day.travel,
            horizon_min=float(day.horizon_min),
            coords=day.coords,
            centre=(float(centre[0]), float(centre[1])),
        )

    @property
    def start_min(self) -> float:
        """The clock minute the service day starts at."""
        return self.travel.start_hour * 60.0


StopKind = Literal["pickup", "dropoff", "onboard", "break"]


@dataclass(frozen=True)
class OnBoard:
    """A passenger on board: its booking (the drop-off is its ``dropoff``; its ``load``,
    ``service_min``, ``max_ride_min`` and ``requested_min`` count) and when its pickup ended
    (minutes from now, negative: in the past; None: not known, which only a passenger
    without a maximum ride time may leave out)."""

    booking: Booking
    picked_up_in_min: float | None = None


@dataclass(frozen=True)
class LiveDriver:
    """A driver at now.

    :param start: where it is free of the work it has set off for.
    :param free_in_min: when it is (negative: since when).
    :param shift: ``(starts, ends)`` in minutes from now.
    :param capacity: its places by kind (an integer: seated places).
    :param plan: the bookings given to it, not set off for, in order of their pickups.
    :param committed_stops: stops of the request's plan before them (committed drop-offs).
    :param stop_order: a plan of stops only (None: pickup then drop-off of each booking of
        ``plan`` in turn): the stops in order, each ``(kind, index)``: the pickup or the
        drop-off of ``plan[index]``, the drop-off of ``onboard[index]``, or ``breaks[index]``.
    :param onboard: the passengers on board (a plan of stops only).
    :param breaks: the breaks still to take, times from now (a plan of stops only).
    """

    id: str
    start: tuple[float, float]
    free_in_min: float
    shift: tuple[float, float]
    capacity: Places | int = 1
    rides_today: int = 0
    plan: tuple[Booking, ...] = ()
    committed_stops: int = 0
    stop_order: tuple[tuple[StopKind, int], ...] | None = None
    onboard: tuple[OnBoard, ...] = ()
    breaks: tuple[Break, ...] = ()


@dataclass(frozen=True)
class LiveFleet:
    """A live state's drivers as arrays (times from now), and their planned bookings one
    driver after another."""

    ids: tuple[str, ...]
    start_xy: np.ndarray
    free_in_min: np.ndarray
    shift_in_min: np.ndarray
    """``(drivers, 2)``: when each shift starts and ends."""
    capacity_by_kind: np.ndarray
    rides_today: np.ndarray
    plan_sizes: np.ndarray
    committed_stops: tuple[int, ...]
    planned: BookingColumns

    @classmethod
    def of(cls, drivers: Sequence[LiveDriver]) -> LiveFleet:
        count = len(drivers)
        return cls(
            ids=tuple(d.id for d in drivers),
            start_xy=np.asarray([d.start for d in drivers], dtype=np.float64).reshape(count, 2),
            free_in_min=np.asarray([d.free_in_min for d in drivers], dtype=np.float64),
            shift_in_min=np.asarray([d.shift for d in drivers], dtype=np.float64).reshape(count, 2),
            capacity_by_kind=np.asarray(
                [Places.of(d.capacity).as_tuple() for d in drivers], dtype=np.int64
            ).reshape(count, len(PLACE_KINDS)),
            rides_today=np.asarray([d.rides_today for d in drivers], dtype=np.int64),
            plan_sizes=np.asarray([len(d.plan) for d in drivers], dtype=np.int64),
            committed_stops=tuple(d.committed_stops for d in drivers),
            planned=BookingColumns.of([b for d in drivers for b in d.plan]),
        )


@dataclass(frozen=True)
class LiveState:
    """The fleet and the open bookings at ``minute_of_day`` (times from now), as the request
    schemas validated them (see :mod:`rldispatch.service.http.fleet_schemas`); ``travel``: the
    fleet's travel model when the request gives one (None: the service's).

    :attr:`fleet` and :attr:`open_columns` are the same as arrays, made once (the request
    schemas make them as they read a request) and carried over to the states derived from
    this one.
    """

    drivers: tuple[LiveDriver, ...]
    open_bookings: tuple[Booking, ...]
    minute_of_day: float
    area_centre: tuple[float, float] | None = None
    travel: TravelConfig | None = None
    plans_of_stops: bool = False
    """The drivers' plans are plans of stops (each driver's ``stop_order``), played as a day
    with shared rides, breaks or maximum ride times is."""
    shared_rides: bool = False
    """With plans of stops: a vehicle may carry several bookings at once."""

    @functools.cached_property
    def fleet(self) -> LiveFleet:
        return LiveFleet.of(self.drivers)

    @functools.cached_property
    def open_columns(self) -> BookingColumns:
        return BookingColumns.of(self.open_bookings)

    def with_arrays(self) -> LiveState:
        """The state with :attr:`open_columns` and, for plans of bookings, :attr:`fleet` made
        now (where a request is read, so answering it works on arrays alone; plans of stops
        are restored from the drivers themselves)."""
        _ = self.open_columns
        if not self.plans_of_stops:
            _ = self.fleet
        return self

    def with_booking_first(self, booking: Booking) -> LiveState:
        """The state with ``booking`` first among the open ones (listed once)."""
        ids = self.open_columns.ids
        kept = np.arange(len(ids))
        others = self.open_bookings
        if booking.id in ids:
            kept = kept[np.asarray(ids, dtype=object) != booking.id]
            others = tuple(others[k] for k in kept.tolist())
        state = self.with_open_bookings((booking, *others))
        columns = (BookingColumns.of((booking,)), self.open_columns.take(kept))
        state.__dict__["open_columns"] = BookingColumns.join(columns)
        return state

    def with_open_bookings(self, bookings: tuple[Booking, ...]) -> LiveState:
        """The same fleet with ``bookings`` open (its arrays carried over)."""
        state = replace(self, open_bookings=bookings)
        if "fleet" in self.__dict__:
            state.__dict__["fleet"] = self.fleet
        return state


def driver_from_request(
    identifier: str,
    start: tuple[float, float],
    free_in_min: float,
    shift: tuple[float, float],
    capacity: int,
    rides_today: int,
    plan: tuple[Booking, ...],
    committed: tuple[tuple[tuple[float, float], float, float | None], ...],
    day: LiveDay,
    minute_of_day: float,
) -> LiveDriver:
    """A driver whose plan begins with committed drop-offs ``(where, service_min, done_in)``
    (passengers on board, or rides set off for): it is free once the last is done, at
    ``done_in`` when given, else after driving there from ``start`` at the day's speed at
    that hour (``minute_of_day`` is now)."""
    free = free_in_min
    for where, service_min, done_in_min in committed:
        if done_in_min is None:
            legs = np.array([start, where])
            travel = TravelModel(_TravelSource(day.coords, day.travel), places=legs)
            a, b = travel.embed(legs)
            pace_km = float(travel.pace_km(a, b))
            at = minute_of_day - day.start_min + max(free, 0.0)  # minutes into the service day
            free = (
                max(free, 0.0) + pace_km * float(travel.minutes_per_km(np.array(at))) + service_min
            )
        else:
            free = done_in_min
        start = where
    return LiveDriver(identifier, start, free, shift, capacity, rides_today, plan, len(committed))


@dataclass(frozen=True)
class _TravelSource:
    """What :class:`TravelModel` reads from a scenario."""

    coords: Coords
    travel: TravelConfig


def _validated_scenario(**fields: object) -> Scenario:
    """The scenario of a live state, which the request schemas validated by the scenario
    format's rules (finite numbers, coordinates, windows and shifts in order, unique ids,
    positive loads and capacities): not checked a second time, which would cost a third of a
    small request's time."""
    scenario = object.__new__(Scenario)
    for name, value in fields.items():
        object.__setattr__(scenario, name, value)
    return scenario


@dataclass(frozen=True)
class LiveEnv:
    """A live state as an env, and the request's drivers and bookings by env index."""

    env: DispatchEnv
    driver_ids: tuple[str, ...]
    booking_ids: tuple[str, ...]
    committed_stops: tuple[int, ...]
    """Per driver, stops of its plan before its first planned booking."""

    plans_of_stops: bool = False
    """The env plays plans of stops: positions are stop indices already."""

    def plan_index(self, driver: int, position: int) -> int:
        """The stop index in the driver's plan of a booking's pickup inserted at
        ``position`` (among its planned bookings, its drop-off right after; with plans of
        stops, the stop index itself)."""
        if self.plans_of_stops:
            return int(position)
        return self.committed_stops[driver] + 2 * int(position)

    def dropoff_plan_index(self, driver: int, position: int, dropoff_position: int) -> int:
        """The stop index of the drop-off of that booking, in the plan with its pickup in."""
        if self.plans_of_stops:
            return int(dropoff_position)
        return self.plan_index(driver, position) + 1


def live_env(
    state: LiveState, day: LiveDay, config: EnvConfig, one_decision: bool = False
) -> LiveEnv:
    """The env of ``state``: a :class:`DaySimulator` restored at now, resumed by a
    :class:`DispatchEnv` with ``config`` (its driver slots must fit the fleet). The state's
    own travel model, when it has one, replaces the day's (travel times and features are
    computed from it).

    Booking index order: the open bookings whose window opens within the lookahead (they can
    be offered now), the other open bookings, then the planned ones; among the open ones the
    order of the request (it breaks ties of equal deadlines, as the index does in a day).
    With ``one_decision`` only the bookings in the visible slots can be offered (the most
    pressing ones, listed first): the insertion cache, drivers × offered bookings, stays small
    whatever the number of open bookings.
    """
    if state.travel is not None:
        # A request cannot name a file of the server: the service's road network, if any.
        day = replace(day, travel=replace(state.travel, road_network=day.travel.road_network))
    origin_min = min(day.start_min, state.minute_of_day)
    now = state.minute_of_day - origin_min
    travel = (
        day.travel
        if origin_min == day.start_min
        else replace(day.travel, start_hour=origin_min / 60.0)
    )
    until = now + config.lookahead_min  # the simulator's visibility test, on its clock
    if state.plans_of_stops:
        return _live_stop_env(state, day, config, one_decision, now, until, travel)
    open_bookings = state.open_columns
    fleet = state.fleet
    visible, hidden = _offered_first(state, now, until, config, one_decision)
    bookings = BookingColumns.join(
        (open_bookings.take(np.concatenate([visible, hidden])), fleet.planned)
    ).shifted(now, release_min=0.0)
    drivers = DriverColumns(
        ids=fleet.ids,
        start_xy=fleet.start_xy,
        shift_start_min=now + fleet.shift_in_min[:, 0],
        shift_end_min=now + fleet.shift_in_min[:, 1],
        capacity_by_kind=fleet.capacity_by_kind,
    )
    scenario = _validated_scenario(
        name="live",
        coords=day.coords,
        horizon_min=day.horizon_min,
        drivers=ColumnDrivers(drivers),
        bookings=ColumnBookings(bookings),
        travel=travel,
        shared_rides=state.shared_rides,
    )
    first_planned = len(open_bookings)
    ends = first_planned + np.cumsum(fleet.plan_sizes)
    plans = [
        range(end - size, end)
        for end, size in zip(ends.tolist(), fleet.plan_sizes.tolist(), strict=True)
    ]
    sim = restore_day(
        scenario,
        now,
        free_min=now + fleet.free_in_min,
        plans=plans,
        rides=fleet.rides_today,
        frame_centre=np.array(state.area_centre or day.centre),
        lookahead_min=config.lookahead_min,
        offered_bookings=len(visible),
        columns=DayColumns(bookings, drivers),
    )
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.continue_from(sim)
    return LiveEnv(
        env=env,
        driver_ids=drivers.ids,
        booking_ids=bookings.ids,
        committed_stops=fleet.committed_stops,
    )


def _offered_first(
    state: LiveState, now: float, until: float, config: EnvConfig, one_decision: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the state's open bookings that can be offered now (window opening by
    ``until``; with ``one_decision`` only the ``visible_slots`` closing first), and of the
    others, each in the request's order (see :func:`live_env`)."""
    open_bookings = state.open_columns
    shows = now + open_bookings.earliest_min <= until
    visible = np.flatnonzero(shows)
    hidden = np.flatnonzero(~shows)
    if one_decision and visible.size > config.visible_slots:
        closes = now + open_bookings.latest_min[visible]
        first = np.zeros(visible.size, dtype=bool)
        first[np.argsort(closes, kind="stable")[: config.visible_slots]] = True
        hidden = np.concatenate([visible[~first], hidden])
        visible = visible[first]
    return visible, hidden


def _live_stop_env(
    state: LiveState,
    day: LiveDay,
    config: EnvConfig,
    one_decision: bool,
    now: float,
    until: float,
    travel: TravelConfig,
) -> LiveEnv:
    """:func:`live_env` of a state of plans of stops (shared rides, breaks, ride limits):
    the same booking index order, then the bookings on board."""
    visible, hidden = _offered_first(state, now, until, config, one_decision)
    open_in_order = [state.open_bookings[k] for k in np.concatenate([visible, hidden]).tolist()]
    planned = [b for d in state.drivers for b in d.plan]
    aboard = [o.booking for d in state.drivers for o in d.onboard]
    bookings = tuple(
        Booking(
            id=b.id,
            release_min=0.0,
            pickup=b.pickup,
            dropoff=b.dropoff,
            requested_min=now + b.requested_min,
            window=(now + b.window[0], now + b.window[1]),
            service_min=b.service_min,
            priority=b.priority,
            load=b.load,
            max_ride_min=b.max_ride_min,
        )
        for b in open_in_order + planned + aboard
    )
    drivers = tuple(
        Driver(
            d.id,
            d.start,
            (now + d.shift[0], now + d.shift[1]),
            d.capacity,
            tuple(
                Break(now + p.earliest_min, now + p.latest_min, p.duration_min) for p in d.breaks
            ),
        )
        for d in state.drivers
    )
    scenario = _validated_scenario(
        name="live",
        coords=day.coords,
        horizon_min=day.horizon_min,
        drivers=drivers,
        bookings=bookings,
        travel=travel,
        shared_rides=state.shared_rides,
    )
    centre = np.array(state.area_centre or day.centre)
    free_min = np.array([now + d.free_in_min for d in state.drivers])
    rides = np.array([d.rides_today for d in state.drivers], dtype=np.int64)
    first_planned = len(open_in_order)
    stops, onboard, picked_done_min = _restore_stops(
        state, scenario, now, first_planned, len(planned)
    )
    sim = restore_stop_day(
        scenario,
        now,
        free_min=free_min,
        stops=stops,
        onboard=onboard,
        picked_done_min=picked_done_min,
        rides=rides,
        frame_centre=centre,
        lookahead_min=config.lookahead_min,
        offered_bookings=len(visible),
    )
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.continue_from(sim)
    return LiveEnv(
        env=env,
        driver_ids=tuple(d.id for d in drivers),
        booking_ids=tuple(b.id for b in bookings),
        committed_stops=tuple(d.committed_stops for d in state.drivers),
        plans_of_stops=True,
    )


def _restore_stops(
    state: LiveState, scenario: Scenario, now: float, first_planned: int, n_planned: int
) -> tuple[list[list[tuple[int, int]]], list[list[int]], np.ndarray]:
    """The stops, passengers on board and pickup ends of a state of plans of stops, by the
    booking indices of :func:`live_env` (planned bookings from ``first_planned``, then those
    on board)."""
    picked_done = np.full(len(scenario.bookings), np.nan)
    stops: list[list[tuple[int, int]]] = []
    onboard: list[list[int]] = []
    planned_at = first_planned
    aboard_at = first_planned + n_planned
    for driver in state.drivers:
        mine: list[tuple[int, int]] = []
        for kind, index in driver.stop_order or ():
            if kind == "pickup":
                mine.append((PICKUP, planned_at + index))
            elif kind == "dropoff":
                mine.append((DROPOFF, planned_at + index))
            elif kind == "onboard":
                mine.append((DROPOFF, aboard_at + index))
            else:
                mine.append((BREAK, index))
        stops.append(mine)
        onboard.append(list(range(aboard_at, aboard_at + len(driver.onboard))))
        for k, passenger in enumerate(driver.onboard):
            if passenger.picked_up_in_min is not None:
                picked_done[aboard_at + k] = now + passenger.picked_up_in_min
        planned_at += len(driver.plan)
        aboard_at += len(driver.onboard)
    return stops, onboard, picked_done
