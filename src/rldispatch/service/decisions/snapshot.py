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

from dataclasses import dataclass, replace

import numpy as np

from rldispatch.domain import Booking, Coords, Driver, Scenario, TravelConfig
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.frame import frame_centre
from rldispatch.sim.state import restore_day
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


@dataclass(frozen=True)
class LiveDriver:
    """A driver at now.

    :param start: where it is free of the work it has set off for.
    :param free_in_min: when it is (negative: since when).
    :param shift: ``(starts, ends)`` in minutes from now.
    :param plan: the bookings given to it, not set off for, in order.
    :param committed_stops: stops of the request's plan before them (committed drop-offs).
    """

    id: str
    start: tuple[float, float]
    free_in_min: float
    shift: tuple[float, float]
    capacity: int = 1
    rides_today: int = 0
    plan: tuple[Booking, ...] = ()
    committed_stops: int = 0


@dataclass(frozen=True)
class LiveState:
    """The fleet and the open bookings at ``minute_of_day`` (times from now), as the request
    schemas validated them (see :mod:`rldispatch.service.http.fleet_schemas`); ``travel``: the
    fleet's travel model when the request gives one (None: the service's)."""

    drivers: tuple[LiveDriver, ...]
    open_bookings: tuple[Booking, ...]
    minute_of_day: float
    area_centre: tuple[float, float] | None = None
    travel: TravelConfig | None = None

    def with_booking_first(self, booking: Booking) -> LiveState:
        """The state with ``booking`` first among the open ones (listed once)."""
        others = tuple(b for b in self.open_bookings if b.id != booking.id)
        return replace(self, open_bookings=(booking, *others))


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

    def plan_index(self, driver: int, position: int) -> int:
        """The stop index in the driver's plan of a booking inserted at ``position`` among
        its planned bookings (its pickup goes there, its drop-off right after)."""
        return self.committed_stops[driver] + 2 * int(position)


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
    opens = [now + b.window[0] for b in state.open_bookings]
    visible = [b for b, at in zip(state.open_bookings, opens, strict=True) if at <= until]
    hidden = [b for b, at in zip(state.open_bookings, opens, strict=True) if at > until]
    if one_decision and len(visible) > config.visible_slots:
        closes = [now + b.window[1] for b in visible]
        pressing = sorted(range(len(visible)), key=closes.__getitem__)[: config.visible_slots]
        first = set(pressing)
        hidden = [b for k, b in enumerate(visible) if k not in first] + hidden
        visible = [b for k, b in enumerate(visible) if k in first]
    planned = [b for d in state.drivers for b in d.plan]
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
        )
        for b in visible + hidden + planned
    )
    drivers = tuple(
        Driver(d.id, d.start, (now + d.shift[0], now + d.shift[1]), d.capacity)
        for d in state.drivers
    )
    scenario = _validated_scenario(
        name="live",
        coords=day.coords,
        horizon_min=day.horizon_min,
        drivers=drivers,
        bookings=bookings,
        travel=travel,
    )
    plans: list[list[int]] = []
    index = len(visible) + len(hidden)
    for driver in state.drivers:
        plans.append(list(range(index, index + len(driver.plan))))
        index += len(driver.plan)
    sim = restore_day(
        scenario,
        now,
        free_min=np.array([now + d.free_in_min for d in state.drivers]),
        plans=plans,
        rides=np.array([d.rides_today for d in state.drivers], dtype=np.int64),
        frame_centre=np.array(state.area_centre or day.centre),
        lookahead_min=config.lookahead_min,
        offered_bookings=len(visible),
    )
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.resume(sim)
    return LiveEnv(
        env=env,
        driver_ids=tuple(d.id for d in drivers),
        booking_ids=tuple(b.id for b in bookings),
        committed_stops=tuple(d.committed_stops for d in state.drivers),
    )
