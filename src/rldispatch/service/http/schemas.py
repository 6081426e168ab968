"""Requests and answers of the HTTP API, with their limits.

Every time in a request is in minutes from *now* (the moment of the request). Validation lives
here: a request that breaks a limit is answered 422 with the path of the field (``loc``) and a
message naming it.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from rldispatch.domain import PLACE_KINDS, Booking, Places
from rldispatch.service.decisions.manager import FALLBACK_REASONS
from rldispatch.service.decisions.snapshot import MINUTES_PER_DAY
from rldispatch.service.http.rounding import Km, Milliseconds, Minutes, Share

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


MAX_PLACES = 16
"""Bound on a vehicle's places and a booking's load, of each kind, in a request."""
MAX_RIDE_MIN = MINUTES_PER_DAY


class PlacesIn(StrictModel):
    """Places by kind: a vehicle's capacity or a booking's load. At least one in all; a kind
    left out is 0. A plain integer instead of this object means that many seated places."""

    seated: Annotated[int, Field(ge=0, le=MAX_PLACES)] = 0
    wheelchair: Annotated[int, Field(ge=0, le=MAX_PLACES)] = 0
    stretcher: Annotated[int, Field(ge=0, le=MAX_PLACES)] = 0

    @model_validator(mode="before")
    @classmethod
    def _known_kinds(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in PLACE_KINDS:
                    close = difflib.get_close_matches(str(key), PLACE_KINDS, n=1, cutoff=0.5)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ValueError(
                        f"{key}: unknown kind of place{hint}; the kinds are "
                        + ", ".join(PLACE_KINDS)
                    )
        return value

    @model_validator(mode="after")
    def _some_place(self) -> PlacesIn:
        if self.seated + self.wheelchair + self.stretcher < 1:
            raise ValueError("seated, wheelchair, stretcher: at least one place in all")
        return self

    def to_domain(self) -> Places:
        return Places(self.seated, self.wheelchair, self.stretcher)


PlacesOrSeats = Annotated[int, Field(ge=1, le=MAX_PLACES)] | PlacesIn


_SEATED = tuple(Places(seated=count) for count in range(MAX_PLACES + 1))
"""Seated places by count, made once: read for every booking of a request (``Places`` is
immutable)."""


def places(value: int | PlacesIn) -> Places:
    """A request's places as the domain's (an integer: seated places)."""
    return value.to_domain() if isinstance(value, PlacesIn) else _SEATED[value]


LOAD_DESCRIPTION = (
    'places the booking takes by kind, e.g. {"wheelchair": 1, "seated": 1} for a '
    "patient with a companion; an integer: that many seated places (default 1)"
)
MAX_RIDE_DESCRIPTION = (
    "the longest the patient may stay on board, minutes from the end of the pickup to the "
    "start of the drop-off (default: no limit); a request with one is played with plans of "
    "stops"
)
MaxRideMin = Annotated[float, Field(gt=0.0, le=MAX_RIDE_MIN, allow_inf_nan=False)]


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
    ] = Field(
        description="latest pickup, not before window_opens_in_min; a booking still open "
        "has not closed yet"
    )
    service_min: Annotated[float, Field(ge=0.0, le=120.0, allow_inf_nan=False)] = 2.0
    priority: Literal[0, 1] = Field(0, description="1 for urgent")
    load: PlacesOrSeats = Field(1, description=LOAD_DESCRIPTION)
    max_ride_min: MaxRideMin | None = Field(None, description=MAX_RIDE_DESCRIPTION)

    @model_validator(mode="after")
    def _window_in_order(self) -> BookingIn:
        if self.window_closes_in_min < self.window_opens_in_min:
            raise ValueError(
                "window_closes_in_min: the window closes before it opens "
                f"({self.window_closes_in_min} < {self.window_opens_in_min})"
            )
        return self

    def to_domain(self) -> Booking:
        return booking_from_request(self.id, self.pickup, self.dropoff, self)


class PickupTerms(Protocol):
    """What a request says of a booking's pickup, in minutes from now: a ``BookingIn`` or the
    pickup stop of a driver's plan."""

    requested_in_min: float
    window_opens_in_min: float
    window_closes_in_min: float
    service_min: float
    priority: int
    load: int | PlacesIn
    max_ride_min: float | None


def booking_from_request(
    booking_id: str, pickup: Location, dropoff: Location, terms: PickupTerms
) -> Booking:
    """The domain booking a request describes, released now (minute 0 of the request).

    Its fields are the validated request's, so the booking is made without the frozen
    dataclass's ``__init__`` (a guarded attribute write per field, and a check of the load:
    1.5 µs against 0.2 µs, measured); it equals the one ``Booking(...)`` makes.
    """
    booking = _new_object(Booking)
    booking.__dict__.update(
        id=booking_id,
        release_min=0.0,
        pickup=(pickup.lat, pickup.lon),
        dropoff=(dropoff.lat, dropoff.lon),
        requested_min=terms.requested_in_min,
        window=(terms.window_opens_in_min, terms.window_closes_in_min),
        service_min=terms.service_min,
        priority=terms.priority,
        load=places(terms.load),
        max_ride_min=terms.max_ride_min,
    )
    return booking


_new_object = object.__new__


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
    pending: int = Field(
        description="records (suggestions, rounds) waiting in memory for the database"
    )
    pending_bytes: int = Field(0, description="their size as JSON (capped)")
    written: int
    lost: int = Field(description="records dropped: buffer full, or stopped with it full")
    overflow: int = Field(0, description="of those lost, dropped because the buffer was full")
    write_errors: int
    last_error: str | None


class LogStatus(BaseModel):
    """The decision log's size and how long it is kept."""

    suggestions: int | None = Field(
        description="rows of rl_suggestions that suggest or assign a booking (None: unreadable)"
    )
    rounds_without_assignment: int | None = Field(
        None, description="rows of rl_suggestions of /rl/round answers that assigned nothing"
    )
    outcomes: int | None = Field(description="rows of rl_outcomes")
    oldest_suggestion_at: datetime | None = Field(description="the oldest row of rl_suggestions")
    oldest_outcome_at: datetime | None
    retain_days: int | None = Field(
        description="rows from UTC days that ended more than this many days ago are pruned "
        "(None: kept forever)"
    )
    archive: bool = Field(description="pruned rows are written to day files first")
    pruned: dict[str, int] = Field(description="rows this worker pruned since it started")
    last_pruned_at: datetime | None
    error: str | None = Field(description="why the size or the pruning failed, if it did")


class LookaheadStatus(BaseModel):
    candidates: int = Field(description="candidates a decision plays on")
    budget_ms: float | None = Field(description="wall-clock budget of one decision (None: none)")
    decisions_cut_short: int = Field(
        description="decisions of this worker whose budget ran out before every candidate"
    )


class TravelStatus(BaseModel):
    source: str = Field(
        description="where the served travel model comes from: serve --travel, or the "
        "model's preset"
    )
    served: dict[str, Any] = Field(
        description="the travel model a request without its own travel block is played with"
    )
    trained: dict[str, Any] = Field(description="the travel model the champion trained with")
    trained_road_network: str | None = Field(
        None, description="the road network file the champion trained on (null: the formula)"
    )
    road_network_differing: str | None = Field(
        None,
        description="how the road network requests travel on differs from the champion's "
        "training, in one line (null: the same)",
    )
    requests: dict[str, int] = Field(
        description="requests of this worker with their own travel block "
        "(requests_with_travel) and those whose travel differs from the champion's training "
        "(travel_differs_from_training)"
    )


class RewardStatus(BaseModel):
    source: str = Field(description="serve --reward, or the model's own weights")
    served: dict[str, float] = Field(description="the weights answers are scored under")
    model: dict[str, float] | None = Field(description="the weights the champion trained under")
    differing: list[str] = Field(description="the weights that differ, model -> served")


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
    lookahead: LookaheadStatus | None = Field(
        None, description="how a pairwise model's answers look ahead (None: they do not)"
    )
    travel: TravelStatus | None = Field(None, description="the travel model a model plays")
    reward: RewardStatus | None = Field(None, description="the reward weights served")
    worker_pid: int = Field(0, description="the process id of the worker that answered")
    started_at: datetime
    uptime_s: float
    database: StoreStatus
    log: LogStatus | None = Field(None, description="the decision log's size and retention")


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
    pickup_delay_min: Minutes
    late: bool


class LatencyOut(BaseModel):
    p50: Milliseconds | None
    p95: Milliseconds | None
    p99: Milliseconds | None
    samples: int


class ArmOutcomes(BaseModel):
    suggestions: int
    bookings: int = Field(0, description="distinct bookings suggested")
    outcomes: int
    completion_rate: Share | None = Field(
        None,
        description="share of the bookings suggested with a reported outcome (a booking not "
        "reported yet counts as not completed)",
    )
    late_rate: Share | None
    mean_distance_km: Km | None
    mean_pickup_delay_min: Minutes | None


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
    suggestions: int = Field(description="suggestions answered (rounds are counted apart)")
    by_source: dict[str, int] = Field(description="suggestions by source")
    rounds: int = Field(0, description="/rl/round answers")
    rounds_by_source: dict[str, int] = Field(default_factory=dict)
    fallbacks: dict[str, int] = Field(description="suggestions and rounds, by fallback reason")
    errors: int
    latency_ms: LatencyOut = Field(description="of the suggestions")
    round_latency_ms: LatencyOut | None = Field(None, description="of the rounds")
    database: StoreStatus
    ab: ABOut
