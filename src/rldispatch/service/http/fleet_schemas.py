"""Requests and answers of the fleet endpoints (``/rl/suggest``, ``/rl/round``): the fleet
with its plans, the open bookings, and what the policy does with them.

Every time in a request is in minutes from *now*. A request that breaks a limit is answered
422 with the path of the field and a message naming it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from rldispatch.domain import (
    MAX_BREAKS,
    MAX_DETOUR,
    MAX_SPEED_FACTOR,
    MAX_SPEED_KMH,
    MIN_SPEED_FACTOR,
    MIN_SPEED_KMH,
    Booking,
    Break,
    TravelConfig,
)
from rldispatch.service.decisions.answers import Candidate, RoundAssignment
from rldispatch.service.decisions.manager import DispatchRound, LiveRequest, Suggestion
from rldispatch.service.decisions.snapshot import (
    LiveDay,
    LiveDriver,
    LiveState,
    OnBoard,
    StopKind,
    driver_from_request,
)
from rldispatch.service.http.rounding import Km, Milliseconds, Minutes, Score
from rldispatch.service.http.schemas import (
    LOAD_DESCRIPTION,
    MAX_DRIVERS_PER_REQUEST,
    MAX_MINUTES_AHEAD,
    MAX_OPEN_BOOKINGS,
    MAX_RIDE_DESCRIPTION,
    BookingIn,
    Identifier,
    Location,
    MaxRideMin,
    MinuteOfDay,
    MinutesFromNow,
    PlacesOrSeats,
    Reason,
    StrictModel,
    booking_from_request,
    places,
)

MAX_STOPS_PER_DRIVER = 64
MAX_PLAN_STOPS = 20_000
MAX_BREAK_MIN = 600.0


class StopIn(StrictModel):
    """One stop of a driver's plan: the pickup or the drop-off of a booking, or a break.

    A pickup carries the booking's window, requested time, service time, priority, load and
    ride limit; the drop-off of the same booking comes after it. A drop-off without a
    pickup in the plan is a passenger on board (in a plan of stops) or a ride the driver has
    set off for (in a plan of whole bookings).

    **Plans of whole bookings** (a request with no ``shared_rides``, no break and no
    ``max_ride_min``, as before): drop-offs without a pickup first, then each pickup followed
    right after by the drop-off of the same booking.

    **Plans of stops** (a request with ``shared_rides``, a break or a ``max_ride_min``): the
    stops in the order the driver will make them, pickups and drop-offs interleaved when
    rides are shared; a drop-off without a pickup is a passenger on board (its ``load``,
    ``max_ride_min`` and ``picked_up_in_min`` count), and breaks sit where the driver will
    take them. The stop the driver has set off for is not in the plan: ``position`` and
    ``free_in_min`` say where and when it is done.

    Rules: a pickup or drop-off has ``booking_id`` and ``location``; a pickup has
    ``requested_in_min``, ``window_opens_in_min`` and ``window_closes_in_min`` (not before
    ``window_opens_in_min``); only a drop-off without a pickup has ``done_in_min`` (plans of
    whole bookings) or ``picked_up_in_min`` (plans of stops); a break has
    ``earliest_in_min``, ``latest_in_min`` (not before ``earliest_in_min``) and
    ``duration_min``, and nothing of a booking.
    """

    kind: Literal["pickup", "dropoff", "break"]
    booking_id: Identifier | None = Field(None, description="required for a pickup or drop-off")
    location: Location | None = Field(None, description="required for a pickup or drop-off")
    requested_in_min: MinutesFromNow | None = Field(
        None,
        description=(
            "requested pickup time; required for a pickup; on the drop-off of a passenger on "
            "board, optional: the hour whose speed its leg is driven at (default "
            "picked_up_in_min)"
        ),
    )
    window_opens_in_min: MinutesFromNow | None = Field(
        None, description="earliest pickup; required for a pickup"
    )
    window_closes_in_min: (
        Annotated[float, Field(ge=0.0, le=MAX_MINUTES_AHEAD, allow_inf_nan=False)] | None
    ) = Field(
        None,
        description="latest pickup; required for a pickup, not before window_opens_in_min",
    )
    service_min: Annotated[float, Field(ge=0.0, le=120.0, allow_inf_nan=False)] = Field(
        2.0, description="minutes at the stop (a planned booking takes its pickup's at both)"
    )
    priority: Literal[0, 1] = Field(0, description="1 for urgent")
    load: PlacesOrSeats = Field(
        1,
        description=LOAD_DESCRIPTION
        + "; on a pickup, or on the drop-off of a passenger on board (plans of stops)",
    )
    max_ride_min: MaxRideMin | None = Field(
        None,
        description=MAX_RIDE_DESCRIPTION + "; on a pickup, or on the drop-off of a passenger "
        "on board",
    )
    done_in_min: MinutesFromNow | None = Field(
        None,
        description=(
            "plans of whole bookings, a drop-off without a pickup only: when it will be done "
            "(default: driving there from the driver's position, setting off at free_in_min, "
            "at the service day's speed, then service_min); takes precedence over "
            "free_in_min and the stops before"
        ),
    )
    picked_up_in_min: MinutesFromNow | None = Field(
        None,
        description=(
            "plans of stops, the drop-off of a passenger on board only: when its pickup "
            "ended (negative: in the past); required with max_ride_min, which counts from it"
        ),
    )
    earliest_in_min: MinutesFromNow | None = Field(
        None, description="a break: the earliest it may start; required for a break"
    )
    latest_in_min: MinutesFromNow | None = Field(
        None,
        description="a break: the latest it may start, not before earliest_in_min; required",
    )
    duration_min: Annotated[float, Field(gt=0.0, le=MAX_BREAK_MIN, allow_inf_nan=False)] | None = (
        Field(None, description="a break: how long it lasts; required for a break")
    )

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> StopIn:
        if self._plainly_valid():
            return self
        if self.kind == "break":
            for name in BREAK_FIELDS:
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for a break")
            if self.latest_in_min < self.earliest_in_min:
                raise ValueError(
                    "latest_in_min: the break's window closes before it opens "
                    f"({self.latest_in_min} < {self.earliest_in_min})"
                )
            for name in BOOKING_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not for a break")
            return self
        for name in ("booking_id", "location"):
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for a {self.kind}")
        for name in BREAK_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: only for a break")
        if self.kind == "pickup":
            for name in ("requested_in_min", "window_opens_in_min", "window_closes_in_min"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for a pickup")
            if self.window_closes_in_min < self.window_opens_in_min:
                raise ValueError(
                    "window_closes_in_min: the window closes before it opens "
                    f"({self.window_closes_in_min} < {self.window_opens_in_min})"
                )
            for name in ("done_in_min", "picked_up_in_min"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only for a drop-off without a pickup")
        return self

    def _plainly_valid(self) -> bool:
        """Whether the stop is a pickup or drop-off that keeps every rule of
        :meth:`_fields_of_its_kind` (the common case, checked without a loop over names;
        any other stop is checked rule by rule, which names the field)."""
        if self.booking_id is None or self.location is None or self.kind == "break":
            return False
        if not (self.earliest_in_min is None and self.latest_in_min is None):
            return False
        if self.duration_min is not None:
            return False
        if self.kind == "dropoff":
            return True
        return (
            self.requested_in_min is not None
            and self.window_opens_in_min is not None
            and self.window_closes_in_min is not None
            and self.window_closes_in_min >= self.window_opens_in_min
            and self.done_in_min is None
            and self.picked_up_in_min is None
        )

    def as_break(self) -> Break:
        """A break stop as the domain's break (times from now)."""
        return Break(self.earliest_in_min, self.latest_in_min, self.duration_min)

    def as_onboard(self) -> OnBoard:
        """The drop-off of a passenger on board as its booking, picked up before now."""
        picked = self.picked_up_in_min
        requested = self.requested_in_min
        if requested is None:
            requested = 0.0 if picked is None else picked
        booking = Booking(
            id=self.booking_id,
            release_min=0.0,
            pickup=self.location.pair(),
            dropoff=self.location.pair(),
            requested_min=requested,
            window=(requested, requested),
            service_min=self.service_min,
            priority=self.priority,
            load=places(self.load),
            max_ride_min=self.max_ride_min,
        )
        return OnBoard(booking, picked)


BREAK_FIELDS = ("earliest_in_min", "latest_in_min", "duration_min")
"""A break stop's own fields."""
BOOKING_FIELDS = (
    "booking_id",
    "location",
    "requested_in_min",
    "window_opens_in_min",
    "window_closes_in_min",
    "max_ride_min",
    "done_in_min",
    "picked_up_in_min",
)
"""A booking's fields a break stop leaves out (its service time, priority and load, which
have defaults, are not read)."""


class DriverIn(StrictModel):
    """A driver: where and when it is free of the work it has set off for, its shift, its
    places and its plan. Without a plan (the older request shape) it is just where and when
    it will be free. Rules: ``shift_ends_in_min`` is after ``shift_starts_in_min`` (default:
    now); a plan holds each booking's pickup at most once, its drop-off once and after it,
    and at most 10 breaks; see the stop's description for the two shapes of plan."""

    id: Identifier
    position: Location = Field(
        description="where it is, or will be once the ride (plans of stops: the stop) it has "
        "set off for ends"
    )
    free_in_min: MinutesFromNow = Field(
        0.0,
        description="when it is free there (negative: free since then); in a plan of whole "
        "bookings a drop-off with done_in_min takes precedence",
    )
    shift_starts_in_min: MinutesFromNow | None = Field(
        None, description="when its shift starts (negative: it has; default: now)"
    )
    shift_ends_in_min: MinutesFromNow = Field(
        description="when its shift ends; after shift_starts_in_min"
    )
    capacity: PlacesOrSeats = Field(
        1,
        description=(
            'its places by kind, e.g. {"seated": 4, "wheelchair": 1}; only a vehicle '
            "with a place of each kind a booking needs takes it; an integer: that many "
            "seated places (default 1)"
        ),
    )
    rides_today: Annotated[int, Field(ge=0, le=1000)] = 0
    plan: list[StopIn] = Field(
        default_factory=list,
        max_length=MAX_STOPS_PER_DRIVER,
        description=(
            "its stops in order. Plans of whole bookings: first drop-offs without a pickup "
            "(on board or set off for), then each planned booking as its pickup and, right "
            "after, its drop-off. Plans of stops: pickups, drop-offs (those without a pickup "
            "are passengers on board) and breaks in the order the driver makes them"
        ),
    )

    @model_validator(mode="after")
    def _shift_and_plan(self) -> DriverIn:
        starts = 0.0 if self.shift_starts_in_min is None else self.shift_starts_in_min
        if self.shift_ends_in_min <= starts:
            raise ValueError(
                "shift_ends_in_min: the shift ends before it starts "
                f"({self.shift_ends_in_min} <= shift_starts_in_min {starts})"
            )
        breaks = sum(stop.kind == "break" for stop in self.plan)
        if breaks > MAX_BREAKS:
            raise ValueError(f"plan: {breaks} breaks, at most {MAX_BREAKS} a shift")
        picked: set[str] = set()
        dropped: set[str] = set()
        for index, stop in enumerate(self.plan):
            if stop.kind == "pickup":
                if stop.booking_id in picked or stop.booking_id in dropped:
                    raise ValueError(
                        f"plan[{index}].booking_id: a second pickup of {stop.booking_id!r} "
                        "(or one after its drop-off)"
                    )
                picked.add(stop.booking_id)
            elif stop.kind == "dropoff":
                if stop.booking_id in dropped:
                    raise ValueError(
                        f"plan[{index}].booking_id: a second drop-off of {stop.booking_id!r}"
                    )
                dropped.add(stop.booking_id)
                planned = stop.booking_id in picked
                for name in ("done_in_min", "picked_up_in_min"):
                    if planned and getattr(stop, name) is not None:
                        raise ValueError(
                            f"plan[{index}].{name}: only for a drop-off without a pickup"
                        )
        missing = sorted(picked - dropped)
        if missing:
            raise ValueError(f"plan: the pickup of {missing[0]!r} has no drop-off after it")
        return self

    def has_stop_terms(self) -> bool:
        """Whether its plan has a break or a ride limit (which make a plan of stops)."""
        return any(s.kind == "break" or s.max_ride_min is not None for s in self.plan)

    def check_whole_bookings(self) -> None:
        """Raise when the plan is not a plan of whole bookings (see :class:`StopIn`)."""
        plan = self.plan
        index = 0
        while index < len(plan) and plan[index].kind == "dropoff":
            index += 1
        while index < len(plan):
            pickup = plan[index]
            if pickup.kind != "pickup":
                raise ValueError(
                    f"plan[{index}]: a drop-off without its pickup must come before every "
                    "planned pickup (shared rides: send shared_rides, see /docs)"
                )
            after = index + 1
            if after >= len(plan) or plan[after].kind != "dropoff":
                raise ValueError(
                    f"plan[{after}]: the drop-off of {pickup.booking_id!r} must "
                    "follow its pickup (one booking at a time; shared rides: send "
                    "shared_rides, see /docs)"
                )
            if plan[after].booking_id != pickup.booking_id:
                raise ValueError(
                    f"plan[{after}].booking_id: the drop-off after the pickup of "
                    f"{pickup.booking_id!r} is of {plan[after].booking_id!r}"
                )
            index += 2

    def check_stops(self, shared_rides: bool) -> None:
        """Raise when the plan of stops breaks a rule of its own (see :class:`StopIn`); a
        day without ``shared_rides`` carries one booking at a time."""
        picked = {s.booking_id for s in self.plan if s.kind == "pickup"}
        carried = sum(1 for s in self.plan if s.kind == "dropoff" and s.booking_id not in picked)
        for index, stop in enumerate(self.plan):
            if stop.done_in_min is not None:
                raise ValueError(
                    f"plan[{index}].done_in_min: not in a plan of stops (position and "
                    "free_in_min say where and when the stop set off for is done)"
                )
            onboard = stop.kind == "dropoff" and stop.booking_id not in picked
            if onboard and stop.max_ride_min is not None and stop.picked_up_in_min is None:
                raise ValueError(
                    f"plan[{index}].picked_up_in_min: required with max_ride_min on board"
                )
            if not shared_rides and carried > 1:
                raise ValueError(
                    f"plan[{index}]: two bookings on board at once, and shared_rides is false"
                )
            carried += 1 if stop.kind == "pickup" else -1 if stop.kind == "dropoff" else 0

    def to_live(self, day: LiveDay, minute_of_day: float, stops: bool = False) -> LiveDriver:
        """The driver as the live state reads it (``stops``: its plan is a plan of stops)."""
        starts = 0.0 if self.shift_starts_in_min is None else self.shift_starts_in_min
        if stops:
            return self._live_stops((starts, self.shift_ends_in_min))
        committed = []
        index = 0
        while index < len(self.plan) and self.plan[index].kind == "dropoff":
            stop = self.plan[index]
            committed.append((stop.location.pair(), stop.service_min, stop.done_in_min))
            index += 1
        planned = []
        for pickup, dropoff in zip(self.plan[index::2], self.plan[index + 1 :: 2], strict=True):
            planned.append(
                booking_from_request(pickup.booking_id, pickup.location, dropoff.location, pickup)
            )
        return driver_from_request(
            self.id,
            self.position.pair(),
            self.free_in_min,
            (starts, self.shift_ends_in_min),
            places(self.capacity),
            self.rides_today,
            tuple(planned),
            tuple(committed),
            day,
            minute_of_day,
        )

    def _live_stops(self, shift: tuple[float, float]) -> LiveDriver:
        dropoffs = {s.booking_id: s for s in self.plan if s.kind == "dropoff"}
        planned: list[Booking] = []
        planned_at: dict[str, int] = {}
        onboard: list[OnBoard] = []
        breaks: list[Break] = []
        order: list[tuple[StopKind, int]] = []
        for stop in self.plan:
            if stop.kind == "break":
                order.append(("break", len(breaks)))
                breaks.append(stop.as_break())
            elif stop.kind == "pickup":
                planned_at[stop.booking_id] = len(planned)
                order.append(("pickup", len(planned)))
                dropoff = dropoffs[stop.booking_id].location
                planned.append(booking_from_request(stop.booking_id, stop.location, dropoff, stop))
            elif stop.booking_id in planned_at:
                order.append(("dropoff", planned_at[stop.booking_id]))
            else:
                order.append(("onboard", len(onboard)))
                onboard.append(stop.as_onboard())
        return LiveDriver(
            self.id,
            self.position.pair(),
            self.free_in_min,
            shift,
            places(self.capacity),
            self.rides_today,
            tuple(planned),
            0,
            tuple(order),
            tuple(onboard),
            tuple(breaks),
        )


def _refuse_duplicate_ids(ids: list[str], field: str, what: str) -> None:
    """Refuse the first id used twice in the list ``field``, naming both places."""
    seen: dict[str, int] = {}
    for index, identifier in enumerate(ids):
        if identifier in seen:
            first = seen[identifier]
            raise ValueError(
                f"{field}[{index}].id: {what} id {identifier!r} is used twice "
                f"({field}[{first}] and {field}[{index}])"
            )
        seen[identifier] = index


DEFAULT_TRAVEL = TravelConfig()


class TravelIn(StrictModel):
    """The fleet's travel model: the scenario format's ``travel`` block (fields left out
    keep the format's defaults). ``start_hour`` is the clock hour of the service day's
    minute 0, as in a scenario file."""

    speed_kmh: float = Field(
        DEFAULT_TRAVEL.speed_kmh, ge=MIN_SPEED_KMH, le=MAX_SPEED_KMH, allow_inf_nan=False
    )
    detour: float = Field(DEFAULT_TRAVEL.detour, ge=1.0, le=MAX_DETOUR, allow_inf_nan=False)
    start_hour: float = Field(DEFAULT_TRAVEL.start_hour, ge=0.0, lt=24.0, allow_inf_nan=False)
    hourly_speed_factor: list[
        Annotated[float, Field(ge=MIN_SPEED_FACTOR, le=MAX_SPEED_FACTOR, allow_inf_nan=False)]
    ] = Field(
        default_factory=lambda: list(DEFAULT_TRAVEL.hourly_speed_factor),
        min_length=24,
        max_length=24,
        description="the speed's factor in each clock hour 0-23 (rush hours below 1)",
    )

    @classmethod
    def from_domain(cls, travel: TravelConfig) -> TravelIn:
        """The block of ``travel`` (its road network, a file of the server, left out)."""
        return cls(
            speed_kmh=travel.speed_kmh,
            detour=travel.detour,
            start_hour=travel.start_hour,
            hourly_speed_factor=list(travel.hourly_speed_factor),
        )

    def to_domain(self) -> TravelConfig:
        return TravelConfig(
            speed_kmh=self.speed_kmh,
            detour=self.detour,
            start_hour=self.start_hour,
            hourly_speed_factor=tuple(self.hourly_speed_factor),
        )


class FleetState(StrictModel):
    """The fleet with its plans and the open bookings, now. Rules: driver ids are unique, and
    so are the ids of the open bookings; a booking is in one place only (the booking asked
    about, the open bookings, or one driver's plan)."""

    drivers: list[DriverIn] = Field(
        min_length=1,
        max_length=MAX_DRIVERS_PER_REQUEST,
        description=f"ids unique; at most {MAX_PLAN_STOPS} plan stops in all",
    )
    open_bookings: list[BookingIn] = Field(
        default_factory=list,
        max_length=MAX_OPEN_BOOKINGS,
        description="bookings nobody has yet; ids unique and in no plan",
    )
    minute_of_day: MinuteOfDay | None = Field(
        None, description="the clock now, minutes after midnight (default: server clock)"
    )
    service_date: dt.date | None = Field(
        None,
        description=(
            "the calendar date of minute_of_day, for the decision log (a day replayed or "
            "sent late; default: the server's date when the request arrives); the answer "
            "does not depend on it"
        ),
    )
    area_centre: Location | None = Field(
        None,
        description=(
            "the reference point of the positions the model reads: the centre of the day's "
            "pickups, drop-offs and drivers (default: the service's, of its preset)"
        ),
    )
    travel: TravelIn | None = Field(
        None,
        description=(
            "the fleet's travel model, the scenario format's travel block; travel times and "
            "the model's features are computed from it (default: the service's, see "
            "/rl/status)"
        ),
    )
    shared_rides: bool | None = Field(
        None,
        description=(
            "true: a vehicle carries several bookings at once within its places by kind "
            "(minibuses); false: one at a time. Sending it (either value), a break or a "
            "max_ride_min makes the plans plans of stops (see the stop's description); "
            "left out with none of them, plans are plans of whole bookings, as before"
        ),
    )

    _stops: bool = PrivateAttr(False)
    """:meth:`plans_of_stops`, as validation found it."""

    @field_validator("drivers")
    @classmethod
    def _unique_driver_ids(cls, drivers: list[DriverIn]) -> list[DriverIn]:
        _refuse_duplicate_ids([d.id for d in drivers], "drivers", "driver")
        stops = sum(len(d.plan) for d in drivers)
        if stops > MAX_PLAN_STOPS:
            raise ValueError(f"drivers[].plan: {stops} stops in all, more than {MAX_PLAN_STOPS}")
        return drivers

    @field_validator("open_bookings")
    @classmethod
    def _unique_booking_ids(cls, bookings: list[BookingIn]) -> list[BookingIn]:
        _refuse_duplicate_ids([b.id for b in bookings], "open_bookings", "booking")
        return bookings

    def plans_of_stops(self) -> bool:
        """Whether the plans are plans of stops: the request sends ``shared_rides``, a break
        or a ``max_ride_min``."""
        booking = getattr(self, "booking", None)
        return (
            self.shared_rides is not None
            or any(d.has_stop_terms() for d in self.drivers)
            or any(b.max_ride_min is not None for b in self.open_bookings)
            or (booking is not None and booking.max_ride_min is not None)
        )

    @model_validator(mode="after")
    def _plans_of_their_shape(self) -> FleetState:
        stops = self._stops = self.plans_of_stops()
        for index, driver in enumerate(self.drivers):
            try:
                if stops:
                    driver.check_stops(bool(self.shared_rides))
                else:
                    driver.check_whole_bookings()
            except ValueError as error:
                raise ValueError(f"drivers[{index}].{error}") from None
        return self

    @model_validator(mode="after")
    def _plans_hold_other_bookings(self) -> FleetState:
        where: dict[str, str] = {b.id: "open_bookings" for b in self.open_bookings}
        booking = getattr(self, "booking", None)
        if booking is not None:
            where.setdefault(booking.id, "booking")
        for index, driver in enumerate(self.drivers):
            picked: set[str] = set()
            for stop_index, stop in enumerate(driver.plan):
                if stop.kind == "break" or stop.booking_id in picked:
                    continue  # a break, or the drop-off of a pickup before it
                if stop.kind == "pickup":
                    picked.add(stop.booking_id)
                place = f"drivers[{index}].plan[{stop_index}]"
                if stop.booking_id in where:
                    raise ValueError(
                        f"{place}.booking_id: booking {stop.booking_id!r} is also in "
                        f"{where[stop.booking_id]}"
                    )
                where[stop.booking_id] = place
        return self

    def as_played(self, served: TravelConfig) -> Self:
        """This request as the service played it: with ``served``'s travel block when it
        carried none (what its log records)."""
        if self.travel is not None:
            return self
        return self.model_copy(update={"travel": TravelIn.from_domain(served)})

    def to_state(self, default_minute_of_day: float, day: LiveDay) -> LiveState:
        now = default_minute_of_day if self.minute_of_day is None else self.minute_of_day
        travel = None if self.travel is None else self.travel.to_domain()
        if travel is not None:
            day = dataclasses.replace(day, travel=travel)
        stops = self._stops
        return LiveState(
            drivers=tuple(d.to_live(day, now, stops) for d in self.drivers),
            open_bookings=tuple(b.to_domain() for b in self.open_bookings),
            minute_of_day=now,
            area_centre=None if self.area_centre is None else self.area_centre.pair(),
            travel=travel,
            plans_of_stops=stops,
            shared_rides=bool(self.shared_rides),
        ).with_arrays()


class SuggestRequest(FleetState):
    """One booking to place, the fleet with its plans and the other open bookings."""

    booking: BookingIn

    def to_live(self, default_minute_of_day: float, day: LiveDay) -> LiveRequest:
        state = self.to_state(default_minute_of_day, day)
        return LiveRequest(self.booking.to_domain(), state).with_arrays()


SHARED_RIDES_EXAMPLE = {
    "shared_rides": True,
    "drivers": [
        {
            "id": "bus1",
            "position": {"lat": 46.21, "lon": 6.14},
            "free_in_min": 0,
            "shift_starts_in_min": -60,
            "shift_ends_in_min": 400,
            "capacity": {"seated": 6},
            "plan": [
                {
                    "kind": "dropoff",
                    "booking_id": "b-1001",
                    "location": {"lat": 46.19, "lon": 6.151},
                    "load": {"seated": 2},
                    "max_ride_min": 60,
                    "picked_up_in_min": -5,
                },
                {"kind": "break", "earliest_in_min": 150, "latest_in_min": 250, "duration_min": 30},
            ],
        },
        {
            "id": "van2",
            "position": {"lat": 46.23, "lon": 6.1},
            "free_in_min": 0,
            "shift_starts_in_min": -60,
            "shift_ends_in_min": 400,
            "capacity": {"seated": 4, "wheelchair": 1},
            "plan": [],
        },
        {
            "id": "car3",
            "position": {"lat": 46.17, "lon": 6.18},
            "free_in_min": 0,
            "shift_starts_in_min": -60,
            "shift_ends_in_min": 400,
            "capacity": 3,
            "plan": [],
        },
    ],
    "open_bookings": [
        {
            "id": "b-1050",
            "pickup": {"lat": 46.211, "lon": 6.141},
            "dropoff": {"lat": 46.19, "lon": 6.15},
            "requested_in_min": 20,
            "window_opens_in_min": 10,
            "window_closes_in_min": 50,
            "max_ride_min": 60,
        },
        {
            "id": "b-1051",
            "pickup": {"lat": 46.21, "lon": 6.14},
            "dropoff": {"lat": 46.19, "lon": 6.15},
            "requested_in_min": 25,
            "window_opens_in_min": 15,
            "window_closes_in_min": 55,
            "load": {"wheelchair": 1, "seated": 1},
            "max_ride_min": 60,
        },
    ],
    "minute_of_day": 540,
    "area_centre": {"lat": 46.2, "lon": 6.14},
}
"""A state with plans of stops: a minibus with two seated passengers on board and a break to
take, a van with a wheelchair place, a car; a seated booking and a wheelchair user."""


class RoundRequest(FleetState):
    """The whole state: the fleet with its plans and the open bookings."""

    model_config = ConfigDict(json_schema_extra={"examples": [SHARED_RIDES_EXAMPLE]})


class CandidateOut(BaseModel):
    driver_id: str
    q_value: Score | None = Field(description="the model's value of this assignment (RL)")
    insertion_cost: Km | None = Field(
        description="km added, plus 2 km per minute late, plus 0.1 km per minute the next "
        "planned pickup is pushed back"
    )
    pickup_in_min: Minutes | None = Field(description="estimated pickup, minutes from now")
    added_km: Km | None = Field(description="km the insertion adds to the driver's plan")
    plan_index: int = Field(description="where the pickup goes in the driver's plan of stops")
    dropoff_plan_index: int = Field(
        description="where the drop-off goes, in the plan with the pickup in (right after it "
        "in a plan of whole bookings)"
    )
    late: bool = Field(description="the pickup is more than 5 minutes after the requested time")
    own_late_min: Minutes = Field(description="minutes the pickup is late (beyond the 5)")
    knock_on_late_min: Minutes = Field(description="lateness added to the planned pickups")
    knock_on_made_late: int = Field(description="planned pickups it makes late")
    cancellation_avoided: bool = Field(
        description="waiting now would cancel the booking (its window closes first)"
    )

    @classmethod
    def from_candidate(cls, candidate: Candidate) -> CandidateOut:
        return cls(**vars(candidate))  # scalar fields: no deep copy (dataclasses.asdict)


class SuggestResponse(BaseModel):
    booking_id: str
    driver_id: str | None = Field(
        description="the driver suggested (with --lookahead the one taken, which may be "
        "another than the first candidate); null when none can serve"
    )
    plan_index: int | None = Field(
        None, description="where the pickup goes in that driver's plan of stops"
    )
    dropoff_plan_index: int | None = Field(
        None,
        description="where the drop-off goes, in the plan with the pickup in (right after it "
        "in a plan of whole bookings)",
    )
    pickup_in_min: Minutes | None = Field(None, description="estimated pickup, minutes from now")
    late: bool | None = Field(None, description="the pickup will be late")
    source: Literal["rl", "fallback"]
    reason: Reason | None = Field(description="why the fallback answered (null for rl)")
    model_version: str | None
    arm: Literal["rl", "heuristic"] | None = Field(description="A/B arm, null outside a test")
    shadow_driver_id: str | None = Field(None, description="shadow mode: the RL answer")
    shadow_reason: Reason | None = Field(None, description="shadow mode: why RL had no answer")
    candidates: list[CandidateOut] = Field(description="best drivers with their scores")
    latency_ms: Milliseconds

    @classmethod
    def from_suggestion(cls, suggestion: Suggestion) -> SuggestResponse:
        chosen = suggestion.chosen
        return cls(
            booking_id=suggestion.booking_id,
            driver_id=suggestion.driver_id,
            plan_index=chosen.plan_index if chosen else None,
            dropoff_plan_index=chosen.dropoff_plan_index if chosen else None,
            pickup_in_min=chosen.pickup_in_min if chosen else None,
            late=chosen.late if chosen else None,
            source=suggestion.source,
            reason=suggestion.reason,
            model_version=suggestion.model_version,
            arm=suggestion.arm,
            shadow_driver_id=suggestion.shadow_driver_id,
            shadow_reason=suggestion.shadow_reason,
            candidates=[CandidateOut.from_candidate(c) for c in suggestion.candidates],
            latency_ms=suggestion.latency_ms,
        )


class AssignmentOut(BaseModel):
    booking_id: str
    driver_id: str
    plan_index: int = Field(
        description="where the pickup goes in the driver's plan of stops, as the round's "
        "earlier assignments left it"
    )
    dropoff_plan_index: int = Field(
        description="where the drop-off goes, in that plan with the pickup in (right after "
        "it in a plan of whole bookings)"
    )
    pickup_in_min: Minutes = Field(description="estimated pickup, minutes from now")
    late: bool
    added_km: Km

    @classmethod
    def from_assignment(cls, assignment: RoundAssignment) -> AssignmentOut:
        return cls(**vars(assignment))


class RoundResponse(BaseModel):
    source: Literal["rl", "fallback"]
    reason: Reason | None = Field(description="why the fallback answered (null for rl)")
    model_version: str | None
    assignments: list[AssignmentOut] = Field(description="in the order the policy made them")
    waiting: list[str] = Field(description="open bookings held back for now")
    ended: Literal["wait", "no_feasible_assignment", "all_assigned", "budget"] = Field(
        description="why the round stopped: the policy chose to wait, nothing more can be "
        "assigned now, nothing is left open, or the request's time budget was spent (the "
        "assignments made until then stand; the bookings left are waiting)"
    )
    shadow_assignments: list[AssignmentOut] | None = Field(
        None, description="shadow mode: the RL round"
    )
    shadow_reason: Reason | None = Field(None, description="shadow mode: why RL had no round")
    latency_ms: Milliseconds

    @classmethod
    def from_round(cls, answer: DispatchRound) -> RoundResponse:
        shadow = answer.shadow_assignments
        return cls(
            source=answer.source,
            reason=answer.reason,
            model_version=answer.model_version,
            assignments=[AssignmentOut.from_assignment(a) for a in answer.assignments],
            waiting=list(answer.waiting),
            ended=answer.ended,
            shadow_assignments=(
                None if shadow is None else [AssignmentOut.from_assignment(a) for a in shadow]
            ),
            shadow_reason=answer.shadow_reason,
            latency_ms=answer.latency_ms,
        )
