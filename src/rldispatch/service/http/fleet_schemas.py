"""Requests and answers of the fleet endpoints (``/rl/suggest``, ``/rl/round``): the fleet
with its plans, the open bookings, and what the policy does with them.

Every time in a request is in minutes from *now*. A request that breaks a limit is answered
422 with the path of the field and a message naming it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from rldispatch.domain import MAX_DETOUR, MAX_SPEED_FACTOR, MAX_SPEED_KMH, TravelConfig
from rldispatch.service.decisions.answers import Candidate, RoundAssignment
from rldispatch.service.decisions.manager import DispatchRound, LiveRequest, Suggestion
from rldispatch.service.decisions.snapshot import (
    LiveDay,
    LiveDriver,
    LiveState,
    driver_from_request,
)
from rldispatch.service.http.rounding import Km, Milliseconds, Minutes, Score
from rldispatch.service.http.schemas import (
    MAX_DRIVERS_PER_REQUEST,
    MAX_MINUTES_AHEAD,
    MAX_OPEN_BOOKINGS,
    BookingIn,
    Identifier,
    Location,
    MinuteOfDay,
    MinutesFromNow,
    Reason,
    StrictModel,
    booking_from_request,
)

MAX_STOPS_PER_DRIVER = 64
MAX_PLAN_STOPS = 20_000


class StopIn(StrictModel):
    """One stop of a driver's plan: the pickup or the drop-off of a booking.

    A booking planned for the driver is its pickup, then right after its drop-off (this
    simulator serves one booking at a time); the pickup carries the booking's window,
    requested time, service time, priority and load. Passengers on board, and rides the
    driver has set off for, are drop-offs without a pickup, first in the plan.

    Rules: a pickup has ``requested_in_min``, ``window_opens_in_min`` and
    ``window_closes_in_min`` (not before ``window_opens_in_min``); only a drop-off without a
    pickup has ``done_in_min``.
    """

    kind: Literal["pickup", "dropoff"]
    booking_id: Identifier
    location: Location
    requested_in_min: MinutesFromNow | None = Field(
        None, description="requested pickup time; required for a pickup"
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
    load: Annotated[int, Field(ge=1, le=16)] = 1
    done_in_min: MinutesFromNow | None = Field(
        None,
        description=(
            "a drop-off without a pickup only: when it will be done (default: driving there "
            "from the driver's position, setting off at free_in_min, at the service day's "
            "speed, then service_min); takes precedence over free_in_min and the stops before"
        ),
    )

    @model_validator(mode="after")
    def _pickup_has_times(self) -> StopIn:
        if self.kind == "pickup":
            for name in ("requested_in_min", "window_opens_in_min", "window_closes_in_min"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for a pickup")
            if self.window_closes_in_min < self.window_opens_in_min:
                raise ValueError(
                    "window_closes_in_min: the window closes before it opens "
                    f"({self.window_closes_in_min} < {self.window_opens_in_min})"
                )
            if self.done_in_min is not None:
                raise ValueError("done_in_min: only for a drop-off without a pickup")
        return self


class DriverIn(StrictModel):
    """A driver: where and when it is free of the work it has set off for, its shift and
    its plan. Without a plan (the older request shape) it is just where and when it will be
    free. Rules: ``shift_ends_in_min`` is after ``shift_starts_in_min`` (default: now); the
    plan holds its drop-offs without a pickup first, then each pickup followed right after by
    the drop-off of the same booking."""

    id: Identifier
    position: Location = Field(
        description="where it is, or will be once the ride it has set off for ends"
    )
    free_in_min: MinutesFromNow = Field(
        0.0,
        description="when it is free there (negative: free since then); a drop-off of its "
        "plan with done_in_min takes precedence",
    )
    shift_starts_in_min: MinutesFromNow | None = Field(
        None, description="when its shift starts (negative: it has; default: now)"
    )
    shift_ends_in_min: MinutesFromNow = Field(
        description="when its shift ends; after shift_starts_in_min"
    )
    capacity: Annotated[int, Field(ge=1, le=16)] = 1
    rides_today: Annotated[int, Field(ge=0, le=1000)] = 0
    plan: list[StopIn] = Field(
        default_factory=list,
        max_length=MAX_STOPS_PER_DRIVER,
        description=(
            "its stops in order: first drop-offs without a pickup (on board or set off for), "
            "then each planned booking as its pickup and, right after, its drop-off"
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
        plan = self.plan
        index = 0
        while index < len(plan) and plan[index].kind == "dropoff":
            index += 1
        while index < len(plan):
            pickup = plan[index]
            if pickup.kind != "pickup":
                raise ValueError(
                    f"plan[{index}]: a drop-off without its pickup must come before every "
                    "planned pickup"
                )
            after = index + 1
            if after >= len(plan) or plan[after].kind != "dropoff":
                raise ValueError(
                    f"plan[{after}]: the drop-off of {pickup.booking_id!r} must "
                    "follow its pickup (one booking at a time)"
                )
            if plan[after].booking_id != pickup.booking_id:
                raise ValueError(
                    f"plan[{after}].booking_id: the drop-off after the pickup of "
                    f"{pickup.booking_id!r} is of {plan[after].booking_id!r}"
                )
            if plan[after].done_in_min is not None:
                raise ValueError(f"plan[{after}].done_in_min: only for a drop-off without a pickup")
            index += 2
        return self

    def booking_ids(self) -> list[str]:
        return [stop.booking_id for stop in self.plan]

    def to_live(self, day: LiveDay, minute_of_day: float) -> LiveDriver:
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
        starts = 0.0 if self.shift_starts_in_min is None else self.shift_starts_in_min
        return driver_from_request(
            self.id,
            self.position.pair(),
            self.free_in_min,
            (starts, self.shift_ends_in_min),
            self.capacity,
            self.rides_today,
            tuple(planned),
            tuple(committed),
            day,
            minute_of_day,
        )


def _first_duplicate(ids: list[str]) -> tuple[str, int, int] | None:
    seen: dict[str, int] = {}
    for index, identifier in enumerate(ids):
        if identifier in seen:
            return identifier, seen[identifier], index
        seen[identifier] = index
    return None


DEFAULT_TRAVEL = TravelConfig()


class TravelIn(StrictModel):
    """The fleet's travel model: the scenario format's ``travel`` block (fields left out
    keep the format's defaults). ``start_hour`` is the clock hour of the service day's
    minute 0, as in a scenario file."""

    speed_kmh: float = Field(
        DEFAULT_TRAVEL.speed_kmh, gt=0.0, le=MAX_SPEED_KMH, allow_inf_nan=False
    )
    detour: float = Field(DEFAULT_TRAVEL.detour, ge=1.0, le=MAX_DETOUR, allow_inf_nan=False)
    start_hour: float = Field(DEFAULT_TRAVEL.start_hour, ge=0.0, lt=24.0, allow_inf_nan=False)
    hourly_speed_factor: list[
        Annotated[float, Field(gt=0.0, le=MAX_SPEED_FACTOR, allow_inf_nan=False)]
    ] = Field(
        default_factory=lambda: list(DEFAULT_TRAVEL.hourly_speed_factor),
        min_length=24,
        max_length=24,
        description="the speed's factor in each clock hour 0-23 (rush hours below 1)",
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

    @field_validator("drivers")
    @classmethod
    def _unique_driver_ids(cls, drivers: list[DriverIn]) -> list[DriverIn]:
        duplicate = _first_duplicate([d.id for d in drivers])
        if duplicate:
            identifier, first, second = duplicate
            raise ValueError(
                f"drivers[{second}].id: driver id {identifier!r} is used twice "
                f"(drivers[{first}] and drivers[{second}])"
            )
        stops = sum(len(d.plan) for d in drivers)
        if stops > MAX_PLAN_STOPS:
            raise ValueError(f"drivers[].plan: {stops} stops in all, more than {MAX_PLAN_STOPS}")
        return drivers

    @field_validator("open_bookings")
    @classmethod
    def _unique_booking_ids(cls, bookings: list[BookingIn]) -> list[BookingIn]:
        duplicate = _first_duplicate([b.id for b in bookings])
        if duplicate:
            identifier, first, second = duplicate
            raise ValueError(
                f"open_bookings[{second}].id: booking id {identifier!r} is used twice "
                f"(open_bookings[{first}] and open_bookings[{second}])"
            )
        return bookings

    @model_validator(mode="after")
    def _plans_hold_other_bookings(self) -> FleetState:
        where: dict[str, str] = {b.id: "open_bookings" for b in self.open_bookings}
        booking = getattr(self, "booking", None)
        if booking is not None:
            where.setdefault(booking.id, "booking")
        for index, driver in enumerate(self.drivers):
            for stop_index, stop in enumerate(driver.plan):
                if stop_index > 0 and driver.plan[stop_index - 1].booking_id == stop.booking_id:
                    continue  # the drop-off of the pickup before it
                place = f"drivers[{index}].plan[{stop_index}]"
                if stop.booking_id in where:
                    raise ValueError(
                        f"{place}.booking_id: booking {stop.booking_id!r} is also in "
                        f"{where[stop.booking_id]}"
                    )
                where[stop.booking_id] = place
        return self

    def to_state(self, default_minute_of_day: float, day: LiveDay) -> LiveState:
        now = default_minute_of_day if self.minute_of_day is None else self.minute_of_day
        travel = None if self.travel is None else self.travel.to_domain()
        if travel is not None:
            day = dataclasses.replace(day, travel=travel)
        return LiveState(
            drivers=tuple(d.to_live(day, now) for d in self.drivers),
            open_bookings=tuple(b.to_domain() for b in self.open_bookings),
            minute_of_day=now,
            area_centre=None if self.area_centre is None else self.area_centre.pair(),
            travel=travel,
        )


class SuggestRequest(FleetState):
    """One booking to place, the fleet with its plans and the other open bookings."""

    booking: BookingIn

    def to_live(self, default_minute_of_day: float, day: LiveDay) -> LiveRequest:
        return LiveRequest(self.booking.to_domain(), self.to_state(default_minute_of_day, day))


class RoundRequest(FleetState):
    """The whole state: the fleet with its plans and the open bookings."""


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
    late: bool = Field(description="the pickup is more than 5 minutes after the requested time")
    own_late_min: Minutes = Field(description="minutes the pickup is late (beyond the 5)")
    knock_on_late_min: Minutes = Field(description="lateness added to the planned pickups")
    knock_on_made_late: int = Field(description="planned pickups it makes late")
    cancellation_avoided: bool = Field(
        description="waiting now would cancel the booking (its window closes first)"
    )

    @classmethod
    def from_candidate(cls, candidate: Candidate) -> CandidateOut:
        return cls(**dataclasses.asdict(candidate))


class SuggestResponse(BaseModel):
    booking_id: str
    driver_id: str | None = Field(
        description="the driver suggested (with --lookahead the one taken, which may be "
        "another than the first candidate); null when none can serve"
    )
    plan_index: int | None = Field(
        None, description="where the pickup goes in that driver's plan of stops"
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
    pickup_in_min: Minutes = Field(description="estimated pickup, minutes from now")
    late: bool
    added_km: Km

    @classmethod
    def from_assignment(cls, assignment: RoundAssignment) -> AssignmentOut:
        return cls(**dataclasses.asdict(assignment))


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
