"""Requests and answers of the HTTP API, with their limits.

Every time in a request is in minutes from *now* (the moment of the request). Validation lives
here: a request that breaks a limit is answered 422 with the path of the field (``loc``) and a
message naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from rldispatch.domain import Booking, Driver
from rldispatch.service.manager import FALLBACK_REASONS, Candidate, Suggestion
from rldispatch.service.snapshot import MINUTES_PER_DAY, LiveRequest

MAX_DRIVERS_PER_REQUEST = 10_000
MAX_OPEN_BOOKINGS = 1_000
MAX_MINUTES_AHEAD = 2 * MINUTES_PER_DAY

Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:@/-]+$",
        description="letters, digits and _ . : @ / -",
    ),
]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
MinutesFromNow = Annotated[
    float, Field(ge=-MINUTES_PER_DAY, le=MAX_MINUTES_AHEAD, allow_inf_nan=False)
]
MinuteOfDay = Annotated[float, Field(ge=0.0, lt=MINUTES_PER_DAY, allow_inf_nan=False)]
Reason = Literal[FALLBACK_REASONS]  # type: ignore[valid-type]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(StrictModel):
    lat: Latitude
    lon: Longitude

    def pair(self) -> tuple[float, float]:
        return (self.lat, self.lon)


class BookingIn(StrictModel):
    """A booking, its times in minutes from now. Rule: ``window_closes_in_min`` is not
    before ``window_opens_in_min``."""

    id: Identifier
    pickup: Location
    dropoff: Location
    requested_in_min: MinutesFromNow = Field(description="requested pickup time")
    window_opens_in_min: MinutesFromNow = Field(description="earliest pickup")
    window_closes_in_min: Annotated[
        float, Field(ge=0.0, le=MAX_MINUTES_AHEAD, allow_inf_nan=False)
    ] = Field(description="latest pickup; a booking still open has not closed yet")
    service_min: Annotated[float, Field(ge=0.0, le=120.0, allow_inf_nan=False)] = 2.0
    priority: Literal[0, 1] = Field(0, description="1 for urgent")
    load: Annotated[int, Field(ge=1, le=16)] = 1

    @model_validator(mode="after")
    def _window_in_order(self) -> BookingIn:
        if self.window_closes_in_min < self.window_opens_in_min:
            raise ValueError(
                "window_closes_in_min: the window closes before it opens "
                f"({self.window_closes_in_min} < {self.window_opens_in_min})"
            )
        return self

    def to_domain(self) -> Booking:
        return Booking(
            id=self.id,
            release_min=0.0,
            pickup=self.pickup.pair(),
            dropoff=self.dropoff.pair(),
            requested_min=self.requested_in_min,
            window=(self.window_opens_in_min, self.window_closes_in_min),
            service_min=self.service_min,
            priority=self.priority,
            load=self.load,
        )


class DriverIn(StrictModel):
    """A candidate driver: where and when it will be free, and until when it works. Rule:
    ``shift_ends_in_min`` is after ``free_in_min``."""

    id: Identifier
    position: Location = Field(description="where it is, or will be once its current work ends")
    free_in_min: Annotated[float, Field(ge=0.0, le=MAX_MINUTES_AHEAD, allow_inf_nan=False)] = 0.0
    shift_ends_in_min: Annotated[float, Field(gt=0.0, le=MAX_MINUTES_AHEAD, allow_inf_nan=False)]
    capacity: Annotated[int, Field(ge=1, le=16)] = 1
    rides_today: Annotated[int, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def _free_before_shift_ends(self) -> DriverIn:
        if self.shift_ends_in_min <= self.free_in_min:
            raise ValueError(
                "shift_ends_in_min: the shift ends before the driver is free "
                f"({self.shift_ends_in_min} <= free_in_min {self.free_in_min})"
            )
        return self

    def to_domain(self) -> Driver:
        return Driver(
            id=self.id,
            start=self.position.pair(),
            shift=(self.free_in_min, self.shift_ends_in_min),
            capacity=self.capacity,
        )


def _first_duplicate(ids: list[str]) -> tuple[str, int, int] | None:
    seen: dict[str, int] = {}
    for index, identifier in enumerate(ids):
        if identifier in seen:
            return identifier, seen[identifier], index
        seen[identifier] = index
    return None


class SuggestRequest(StrictModel):
    """One booking to place, the candidate drivers and (optionally) the other open bookings.
    Rule: driver ids are unique, and so are the ids of the open bookings."""

    booking: BookingIn
    drivers: list[DriverIn] = Field(min_length=1, max_length=MAX_DRIVERS_PER_REQUEST)
    open_bookings: list[BookingIn] = Field(default_factory=list, max_length=MAX_OPEN_BOOKINGS)
    minute_of_day: MinuteOfDay | None = Field(
        None, description="the clock now, minutes after midnight (default: server clock)"
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

    def to_live(self, default_minute_of_day: float) -> LiveRequest:
        return LiveRequest(
            booking=self.booking.to_domain(),
            drivers=tuple(d.to_domain() for d in self.drivers),
            minute_of_day=(
                default_minute_of_day if self.minute_of_day is None else self.minute_of_day
            ),
            open_bookings=tuple(b.to_domain() for b in self.open_bookings),
            rides_today=tuple(d.rides_today for d in self.drivers),
        )


class CandidateOut(BaseModel):
    driver_id: str
    q_value: float | None = Field(description="the model's value of this assignment (RL)")
    insertion_cost: float | None = Field(description="km added plus 2 km per minute late")
    pickup_in_min: float | None = Field(description="estimated pickup, minutes from now")
    added_km: float | None

    @classmethod
    def from_candidate(cls, candidate: Candidate) -> CandidateOut:
        return cls(
            driver_id=candidate.driver_id,
            q_value=candidate.q_value,
            insertion_cost=candidate.insertion_cost,
            pickup_in_min=candidate.pickup_in_min,
            added_km=candidate.added_km,
        )


class SuggestResponse(BaseModel):
    booking_id: str
    driver_id: str | None = Field(description="the driver suggested; null when none can serve")
    source: Literal["rl", "fallback"]
    reason: Reason | None = Field(description="why the fallback answered (null for rl)")
    model_version: str | None
    arm: Literal["rl", "heuristic"] | None = Field(description="A/B arm, null outside a test")
    shadow_driver_id: str | None = Field(None, description="shadow mode: the RL answer")
    shadow_reason: Reason | None = Field(None, description="shadow mode: why RL had no answer")
    candidates: list[CandidateOut] = Field(description="best drivers with their scores")
    latency_ms: float

    @classmethod
    def from_suggestion(cls, suggestion: Suggestion) -> SuggestResponse:
        return cls(
            booking_id=suggestion.booking_id,
            driver_id=suggestion.driver_id,
            source=suggestion.source,
            reason=suggestion.reason,
            model_version=suggestion.model_version,
            arm=suggestion.arm,
            shadow_driver_id=suggestion.shadow_driver_id,
            shadow_reason=suggestion.shadow_reason,
            candidates=[CandidateOut.from_candidate(c) for c in suggestion.candidates],
            latency_ms=suggestion.latency_ms,
        )


class ToggleRequest(StrictModel):
    """Fields left out keep their value."""

    enabled: Annotated[bool, Field(strict=True)] | None = None
    ab_ratio: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)] | None = (
        None
    )
    shadow: Annotated[bool, Field(strict=True)] | None = None


class ToggleStateOut(BaseModel):
    enabled: bool
    ab_ratio: float
    shadow: bool
    updated_at: datetime
    updated_by: str
    version: int = Field(0, description="the switch row's version after this change")


class ModelStatus(BaseModel):
    """The loaded model; ``kind`` is ``dqn`` (flat) or ``pairwise``, ``max_drivers`` is None
    for a pairwise model (it plays any fleet)."""

    loaded: bool
    path: str | None
    version: str | None
    kind: str | None
    runtime: Literal["numpy", "torch", "onnx"] | None
    preset: str | None
    max_drivers: int | None
    visible_slots: int | None
    error: str | None


class StoreStatus(BaseModel):
    url: str = Field(description="the database URL, passwords masked")
    available: bool
    pending: int = Field(description="suggestions waiting in memory for the database")
    pending_bytes: int = Field(0, description="their size as JSON (capped)")
    written: int
    lost: int = Field(description="records dropped: buffer full, or stopped with it full")
    overflow: int = Field(0, description="of those lost, dropped because the buffer was full")
    write_errors: int
    last_error: str | None


class StatusResponse(BaseModel):
    model: ModelStatus
    enabled: bool
    ab_ratio: float
    shadow: bool
    state_updated_at: datetime
    state_updated_by: str
    state_version: int = Field(0, description="the version of the switch row served")
    challenger: ModelStatus | None = Field(None, description="the challenger model, if any")
    challenger_ratio: float = Field(0.0, description="share of the rl arm it answers")
    fallback_policy: str
    worker_pid: int = Field(0, description="the process id of the worker that answered")
    started_at: datetime
    uptime_s: float
    database: StoreStatus


OUTCOME_MAX_AGE = timedelta(days=31)
OUTCOME_CLOCK_SKEW = timedelta(minutes=15)
OUTCOME_MAX_DELAY = timedelta(days=1)


class OutcomeRequest(StrictModel):
    """What really happened to a booking, reported after the ride: once per suggested
    booking, within 31 days, pickup no more than a day from the requested time."""

    booking_id: Identifier
    driver_id: Identifier | None = None
    requested_pickup_at: AwareDatetime = Field(
        description="within 31 days before now (and at most 15 minutes after)"
    )
    picked_up_at: AwareDatetime = Field(
        description=(
            "within 31 days before now, not in the future (15 minutes of clock skew), at "
            "most a day before or after requested_pickup_at"
        )
    )
    distance_km: Annotated[float, Field(ge=0.0, le=2000.0, allow_inf_nan=False)] = Field(
        description="km driven for this booking (to the pickup and to the drop-off)"
    )

    @model_validator(mode="after")
    def _times_near_now(self) -> OutcomeRequest:
        now = datetime.now(UTC)
        for name in ("requested_pickup_at", "picked_up_at"):
            when = getattr(self, name)
            if not now - OUTCOME_MAX_AGE <= when <= now + OUTCOME_CLOCK_SKEW:
                raise ValueError(
                    f"{name}: must lie within the last 31 days and not in the future "
                    f"(got {when.isoformat()})"
                )
        if abs(self.picked_up_at - self.requested_pickup_at) > OUTCOME_MAX_DELAY:
            raise ValueError("picked_up_at: more than a day away from requested_pickup_at")
        return self


class OutcomeResponse(BaseModel):
    booking_id: str
    accepted: bool
    pickup_delay_min: float
    late: bool


class LatencyOut(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None
    samples: int


class ArmOutcomes(BaseModel):
    suggestions: int
    outcomes: int
    late_rate: float | None
    mean_distance_km: float | None
    mean_pickup_delay_min: float | None


class ModelVersionOutcomes(ArmOutcomes):
    """The ``rl`` arm's figures for one model version (champion or challenger)."""

    model_version: str


class ABOut(BaseModel):
    ab_ratio: float
    arms: dict[Literal["rl", "heuristic"], ArmOutcomes] | None
    rl_by_model_version: list[ModelVersionOutcomes] | None = Field(
        None, description="the rl arm by the model version that answered"
    )
    error: str | None = None


class MetricsResponse(BaseModel):
    suggestions: int
    by_source: dict[str, int]
    fallbacks: dict[str, int]
    errors: int
    latency_ms: LatencyOut
    database: StoreStatus
    ab: ABOut
