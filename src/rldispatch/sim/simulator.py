"""Event-driven simulation of one service day.

Each driver serves its bookings one after another: drive to the pickup, wait for the window to
open, pick up, drive to the drop-off, drop off. A driver's *plan* is the ordered list of
bookings it has been given but has not yet set off for; it leaves for the next one just in
time (as late as it can without starting the pickup later), so until then the plan can still
change. Once a driver sets off, that booking is locked: its pickup time is fixed and it counts
as served.

A booking is released at ``release_min`` (when the dispatcher learns of it), becomes
*visible* for dispatch ``lookahead_min`` before its window opens, and is cancelled if nobody
has been given it when its window closes. Plans only ever hold feasible schedules: every
pickup inside its window, every plan finished before the driver's shift ends, every load
within capacity.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Scenario
from rldispatch.sim.columns import DayColumns
from rldispatch.sim.frame import frame_centre
from rldispatch.sim.kernels import (
    fill_best_insertions,
    release_and_cancel,
    schedule_plan,
    schedule_plans,
    write_positions,
)
from rldispatch.sim.kernels import next_event_min as next_event_kernel
from rldispatch.sim.kernels import visible_bookings as visible_kernel
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.noise import Uncertainty, day_draws
from rldispatch.sim.travel import TravelModel

UNRELEASED, OPEN, ASSIGNED, SERVED, CANCELLED, NO_SHOW = 0, 1, 2, 3, 4, 5
FEASIBILITY_TOLERANCE_MIN = 1e-7
LATE_COST_KM_PER_MIN = 2.0
"""Insertion cost: one minute of lateness weighs as much as this many km of driving."""
DELAY_COST_KM_PER_MIN = 0.1
"""Insertion cost: one minute that an insertion pushes the next pickup back, in km."""
INSERTION_RULES = (
    LATE_AFTER_REQUESTED_MIN,
    LATE_COST_KM_PER_MIN,
    DELAY_COST_KM_PER_MIN,
    FEASIBILITY_TOLERANCE_MIN,
)


@dataclass(frozen=True)
class InsertionTable:
    """The cheapest feasible way to give each candidate booking to each driver.

    Arrays are ``(drivers, candidates)``; where ``feasible`` is False the other entries are
    meaningless.
    """

    candidates: np.ndarray
    feasible: np.ndarray
    cost: np.ndarray
    added_km: np.ndarray
    pickup_min: np.ndarray
    position: np.ndarray
    dropoff_position: np.ndarray | None = None
    """Plans of stops only: where the drop-off goes, in the plan after the pickup went in."""


@dataclass(frozen=True)
class Assignment:
    driver: int
    booking: int
    position: int
    added_km: float
    pickup_min: float
    late: bool
    dropoff_position: int = -1
    """Plans of stops only: the drop-off's position (-1: right after the pickup)."""


@dataclass(frozen=True)
class AdvanceOutcome:
    """What happened while the clock moved forward."""

    from_min: float
    to_min: float
    picked_up: int
    late_pickups: int
    cancelled: int
    km_change: float = 0.0
    """Km driven other than planned (a no-show's ride not driven; only on an uncertain day)."""


INSERTION_CACHE = (
    ("_best_valid", np.bool_),
    ("_best_cost", np.float64),
    ("_best_added_km", np.float64),
    ("_best_pickup_min", np.float64),
    ("_best_position", np.int64),
)
"""The arrays of the insertion cache, (driver, booking) each, and their types."""


class DaySimulator:
    """One service day of booking plans (see the module docstring); a scenario with shared
    rides, breaks or maximum ride times is played by
    :class:`rldispatch.sim.stop_simulator.StopDaySimulator` (built by
    :func:`rldispatch.sim.stop_simulator.day_simulator`)."""

    has_stops = False
    """Whether the day has shared rides, breaks or maximum ride times (``Scenario.has_stops``:
    only a :class:`~rldispatch.sim.stop_simulator.StopDaySimulator` plays them)."""

    def __init__(
        self,
        scenario: Scenario,
        lookahead_min: float = 90.0,
        min_advance_min: float = 1.0,
        uncertainty: Uncertainty | None = None,
        columns: DayColumns | None = None,
        centre: np.ndarray | None = None,
        insertion_width: int | None = None,
    ) -> None:
        """:param columns: the scenario's bookings and drivers as arrays, when they are at
            hand (default: read from the scenario).
        :param centre: the reference point of the positions models read (default: the
            centre of the day's points, :func:`rldispatch.sim.frame.frame_centre`).
        :param insertion_width: only bookings ``[0, insertion_width)`` can be offered: the
            insertion cache holds columns for them alone (default: every booking).
        """
        self.scenario = scenario
        self.uncertainty = uncertainty if uncertainty is not None and uncertainty.active else None
        self.draws = day_draws(uncertainty, scenario) if self.uncertainty else None
        self.lookahead_min = float(lookahead_min)
        self.min_advance_min = float(min_advance_min)
        columns = columns if columns is not None else DayColumns.of(scenario)
        bookings, drivers = columns.bookings, columns.drivers
        places = None
        if scenario.travel.road_network is not None:
            places = np.concatenate([drivers.start_xy, bookings.pickup_xy, bookings.dropoff_xy])
        self.travel = TravelModel(scenario, places)
        self.booking_ids = bookings.ids
        self.driver_ids = drivers.ids
        self.n_bookings = len(bookings)
        self.n_drivers = len(drivers)
        self.horizon_min = float(scenario.horizon_min)
        self._insertion_width = self.n_bookings if insertion_width is None else insertion_width

        self.release_min = bookings.release_min
        self.earliest_min = bookings.earliest_min
        self.latest_min = bookings.latest_min
        self.requested_min = bookings.requested_min
        self.service_min = bookings.service_min
        self.priority = bookings.priority
        # Places by kind (columns in the order of PLACE_KINDS) and their totals.
        self.load_by_kind = bookings.load_by_kind
        self.load = self.load_by_kind.sum(axis=1)
        self.pickup_xy = bookings.pickup_xy
        self.dropoff_xy = bookings.dropoff_xy
        self.driver_start_xy = drivers.start_xy
        # Every point embedded at once: pickups, drop-offs, then driver starts.
        points = np.concatenate([self.pickup_xy, self.dropoff_xy, self.driver_start_xy])
        vectors = self.travel.embed(points)
        count = self.n_bookings
        self.pickup_vec = vectors[:count]
        self.dropoff_vec = vectors[count : 2 * count]
        self.driver_start_vec = vectors[2 * count :]
        self.minutes_per_km = self.travel.minutes_per_km(self.requested_min)
        self.ride_km = self.travel.distance_km(self.pickup_vec, self.dropoff_vec)
        self.ride_pace_km = (
            self.travel.pace_km(self.pickup_vec, self.dropoff_vec)
            if self.travel.on_roads
            else self.ride_km
        )
        self.ride_min = self.ride_pace_km * self.minutes_per_km
        # Time from the start of the pickup to the end of the drop-off.
        self.pickup_to_free_min = 2.0 * self.service_min + self.ride_min

        self.shift_start_min = drivers.shift_start_min
        self.shift_end_min = drivers.shift_end_min
        self.capacity_by_kind = drivers.capacity_by_kind
        self.capacity = self.capacity_by_kind.sum(axis=1)
        # fits[driver, booking]: the vehicle has a place of every kind the booking needs.
        self.fits = np.ones((self.n_drivers, self.n_bookings), dtype=bool)
        if self.n_bookings and self.n_drivers:
            least = self.capacity_by_kind.min(axis=0)
            needs = self.load_by_kind.max(axis=0) > least
            for kind in np.flatnonzero(needs).tolist():  # kinds some vehicle lacks room for
                # Only the bookings needing more of the kind than the smallest vehicle has.
                needy = np.flatnonzero(self.load_by_kind[:, kind] > least[kind])
                self.fits[:, needy] &= (
                    self.load_by_kind[needy, kind][None, :] <= self.capacity_by_kind[:, kind, None]
                )
        # The reference point of the positions models read (see rldispatch.sim.frame).
        if centre is None:
            centre = frame_centre(
                np.concatenate([self.pickup_xy, self.dropoff_xy, self.driver_start_xy])
            )
        self.frame_centre = np.asarray(centre, dtype=np.float64).reshape(2)
        self._fixed_names = frozenset(vars(self)) | {"_fixed_names"}
        self.reset()

    def scale_travel(self, factor: np.ndarray) -> None:
        """Make every leg to each booking and its ride take ``factor[booking]`` times as
        long (a realised day for a hindsight plan); only before anything is planned."""
        self.minutes_per_km = self.minutes_per_km * np.asarray(factor, dtype=np.float64)
        self.ride_min = self.ride_pace_km * self.minutes_per_km
        self.pickup_to_free_min = 2.0 * self.service_min + self.ride_min

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        n_drivers, n_bookings = self.n_drivers, self.n_bookings
        self.now_min = 0.0
        self.status = np.full(n_bookings, UNRELEASED, dtype=np.int64)
        self.assigned_driver = np.full(n_bookings, -1, dtype=np.int64)
        self.pickup_min = np.full(n_bookings, np.nan)
        self.anchor_min = self.shift_start_min.copy()
        self.anchor_vec = self.driver_start_vec.copy()
        self.anchor_booking = np.full(n_drivers, -1, dtype=np.int64)
        self.plans: list[list[int]] = [[] for _ in range(n_drivers)]
        self.plan_start: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.plan_complete: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.plan_leg_min: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.plan_end_min = self.anchor_min.copy()
        self.plan_end_booking = np.full(n_drivers, -1, dtype=np.int64)
        self.next_departure_min = np.full(n_drivers, np.inf)
        self.rides = np.zeros(n_drivers, dtype=np.int64)
        self.distance_km = 0.0
        self.late_pickups = 0
        self._waiting = n_bookings  # unreleased or open
        self._visible_cache: np.ndarray | None = None
        # Insertion positions of every driver, padded to a common width.
        width = 4
        self._pos_valid = np.zeros((n_drivers, width), dtype=bool)
        self._pos_valid[:, 0] = True
        self._pos_prev_min = np.zeros((n_drivers, width))
        self._pos_prev_min[:, 0] = self.anchor_min
        self._pos_prev_vec = np.zeros((n_drivers, width, self.anchor_vec.shape[1]))
        self._pos_prev_vec[:, 0] = self.anchor_vec
        self._pos_has_next = np.zeros((n_drivers, width), dtype=bool)
        self._pos_next_booking = np.zeros((n_drivers, width), dtype=np.int64)
        self._pos_next_start = np.zeros((n_drivers, width))
        self._pos_next_slack = np.zeros((n_drivers, width))
        self._pos_prev_next_km = np.zeros((n_drivers, width))
        # The best insertion of each (driver, booking), kept until the driver's state changes.
        self.size_insertion_cache(self._insertion_width)
        self._release_and_cancel(0.0)

    def copy(self) -> DaySimulator:
        """An independent copy of the day in its current state; the day's fixed data (the
        scenario, travel model and booking and driver columns) is shared, not copied."""
        fixed = {id(getattr(self, name)): getattr(self, name) for name in self._fixed_names}
        return copy.deepcopy(self, fixed)

    def forget_unreleased(self) -> None:
        """Drop the bookings not yet released from the day: from now on the simulator
        knows only what a dispatcher knows now (a lookahead's copy; they count as cancelled
        in its figures)."""
        unreleased = self.status == UNRELEASED
        self.status[unreleased] = CANCELLED
        self._waiting -= int(unreleased.sum())
        self._visible_cache = None
        self.draws = None  # what will happen is not known either: plans are played as planned

    def size_insertion_cache(self, width: int) -> None:
        """Let the insertion cache hold bookings ``[0, width)`` alone (only they can be
        offered): the entries it keeps stay, the columns it gains are computed when asked."""
        for name, dtype in INSERTION_CACHE:
            old = getattr(self, name, None)
            new = np.zeros((self.n_drivers, width), dtype=dtype)
            if old is not None:
                kept = min(width, old.shape[1])
                new[:, :kept] = old[:, :kept]
            setattr(self, name, new)

    def offer_every_booking(self) -> None:
        """Widen an insertion cache restored for the first bookings alone
        (:func:`rldispatch.sim.state.restore_day` ``offered_bookings``) to every booking, so
        a copy played on as its clock moves can offer the bookings that become visible."""
        if self._best_cost.shape[1] < self.n_bookings:
            self.size_insertion_cache(self.n_bookings)

    @property
    def done(self) -> bool:
        """True once every booking is assigned, served or cancelled."""
        return self._waiting == 0

    def visible_bookings(self) -> np.ndarray:
        """Open bookings that can be dispatched now, most pressing (earliest deadline) first."""
        if self._visible_cache is None:
            self._visible_cache = visible_kernel(
                self.status,
                self.earliest_min,
                self.latest_min,
                OPEN,
                self.now_min + self.lookahead_min,
            )
        return self._visible_cache

    def driver_free_min(self) -> np.ndarray:
        """When each driver will have finished all it has been given (locked and planned)."""
        return np.maximum(self.plan_end_min, self.now_min)

    def driver_free_vec(self) -> np.ndarray:
        """Where each driver is, or will be once the ride it has set off for ends (embedded)."""
        return self.anchor_vec

    def driver_free_booking(self) -> np.ndarray:
        """The booking whose drop-off is where each driver will be free (-1: its start)."""
        return self.plan_end_booking

    def unplanned_drivers(self) -> np.ndarray:
        """Before the end of their shift, with no booking planned beyond the one (if any)
        they are on."""
        return (self._pos_has_next[:, 0] == 0) & (self.shift_end_min > self.now_min)

    def idle_drivers(self) -> np.ndarray:
        """On shift now, with nothing locked or planned."""
        return (
            (self._pos_has_next[:, 0] == 0)
            & (self.anchor_min <= self.now_min)
            & (self.shift_start_min <= self.now_min)
            & (self.shift_end_min > self.now_min)
        )

    # --- plans -------------------------------------------------------------------------------

    def _schedule(self, driver: int) -> None:
        """Recompute the times and slack of a driver's plan and its insertion positions."""
        plan = self.plans[driver]
        size = len(plan)
        plan_array = np.asarray(plan, dtype=np.int64)
        start, complete, leg, leg_km, slack = schedule_plan(
            plan_array,
            max(self.anchor_min[driver], self.now_min),
            self.anchor_vec[driver],
            self.pickup_vec,
            self.dropoff_vec,
            self.minutes_per_km,
            self.earliest_min,
            self.latest_min,
            self.pickup_to_free_min,
            self.shift_end_min[driver],
            self.travel.kernel_args,
        )
        self.plan_start[driver] = start
        self.plan_complete[driver] = complete
        self.plan_leg_min[driver] = leg
        self.plan_end_min[driver] = complete[-1] if size else self.anchor_min[driver]
        self.plan_end_booking[driver] = plan[-1] if size else self.anchor_booking[driver]
        self.next_departure_min[driver] = start[0] - leg[0] if size else np.inf

        if size + 1 > self._pos_valid.shape[1]:
            self._widen_positions(2 * (size + 1))
        write_positions(
            driver,
            plan_array,
            self.anchor_min[driver],
            self.anchor_vec[driver],
            self.dropoff_vec,
            start,
            complete,
            leg_km,
            slack,
            self._plan_state(),
        )
        self._best_valid[driver] = False

    def _schedule_all(self) -> None:
        """:meth:`_schedule` of every driver, in one compiled pass (a restored day)."""
        plans = self.plans
        sizes = np.fromiter(map(len, plans), dtype=np.int64, count=len(plans))
        offsets = np.zeros(len(plans) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        flat = np.fromiter(
            itertools.chain.from_iterable(plans), dtype=np.int64, count=int(offsets[-1])
        )
        widest = int(sizes.max(initial=0))
        if widest + 1 > self._pos_valid.shape[1]:
            self._widen_positions(2 * (widest + 1))
        start, complete, leg = schedule_plans(
            np.arange(self.n_drivers, dtype=np.int64),
            flat,
            offsets,
            np.maximum(self.anchor_min, self.now_min),
            self.anchor_min,
            self.anchor_vec,
            self.shift_end_min,
            self._booking_state(),
            self.travel.kernel_args,
            self._plan_state(),
        )
        bounds = list(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True))
        self.plan_start[:] = [start[first:end] for first, end in bounds]
        self.plan_complete[:] = [complete[first:end] for first, end in bounds]
        self.plan_leg_min[:] = [leg[first:end] for first, end in bounds]
        planned = sizes > 0
        if flat.size:
            first = np.minimum(offsets[:-1], flat.size - 1)
            last = np.maximum(offsets[1:] - 1, 0)
            self.plan_end_min[:] = np.where(planned, complete[last], self.anchor_min)
            self.plan_end_booking[:] = np.where(planned, flat[last], self.anchor_booking)
            self.next_departure_min[:] = np.where(planned, start[first] - leg[first], np.inf)
        else:
            self.plan_end_min[:] = self.anchor_min
            self.plan_end_booking[:] = self.anchor_booking
            self.next_departure_min[:] = np.inf
        self._best_valid[:] = False

    def _widen_positions(self, width: int) -> None:
        def widen(array: np.ndarray) -> np.ndarray:
            wider = np.zeros((array.shape[0], width, *array.shape[2:]), dtype=array.dtype)
            wider[:, : array.shape[1]] = array
            return wider

        self._pos_valid = widen(self._pos_valid)
        self._pos_prev_min = widen(self._pos_prev_min)
        self._pos_prev_vec = widen(self._pos_prev_vec)
        self._pos_has_next = widen(self._pos_has_next)
        self._pos_next_booking = widen(self._pos_next_booking)
        self._pos_next_start = widen(self._pos_next_start)
        self._pos_next_slack = widen(self._pos_next_slack)
        self._pos_prev_next_km = widen(self._pos_prev_next_km)

    def _plan_state(self) -> tuple[np.ndarray, ...]:
        return (
            self._pos_valid,
            self._pos_prev_min,
            self._pos_prev_vec,
            self._pos_has_next,
            self._pos_next_booking,
            self._pos_next_start,
            self._pos_next_slack,
            self._pos_prev_next_km,
        )

    def _booking_state(self) -> tuple[np.ndarray, ...]:
        return (
            self.pickup_vec,
            self.dropoff_vec,
            self.minutes_per_km,
            self.earliest_min,
            self.latest_min,
            self.requested_min,
            self.pickup_to_free_min,
            self.ride_km,
        )

    def _fill(
        self,
        candidates: np.ndarray,
        valid: np.ndarray,
        cost: np.ndarray,
        added_km: np.ndarray,
        pickup_min: np.ndarray,
        position: np.ndarray,
    ) -> None:
        fill_best_insertions(
            candidates,
            self.now_min,
            self._plan_state(),
            self._booking_state(),
            self.fits,
            self.shift_end_min,
            self.travel.kernel_args,
            INSERTION_RULES,
            valid,
            cost,
            added_km,
            pickup_min,
            position,
        )

    def insertion_table(self, candidates: np.ndarray) -> InsertionTable:
        """Cheapest feasible insertion of each candidate booking into each driver's plan,
        computed from scratch; :meth:`best_insertions` gives the same answers from a cache.
        Where ``feasible`` is False, ``cost`` is ``inf``."""
        candidates = np.asarray(candidates, dtype=np.int64)
        shape = (self.n_drivers, self.n_bookings)
        valid = np.zeros(shape, dtype=bool)
        cost, added_km, pickup_min = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        position = np.zeros(shape, dtype=np.int64)
        self._fill(candidates, valid, cost, added_km, pickup_min, position)
        cost = cost[:, candidates]
        return InsertionTable(
            candidates,
            np.isfinite(cost),
            cost,
            added_km[:, candidates],
            pickup_min[:, candidates],
            position[:, candidates],
        )

    def best_insertions(self, candidates: np.ndarray) -> InsertionTable:
        """:meth:`insertion_table` from a cache: only the entries of drivers whose plan,
        position or clock changed, and of bookings not seen before, are computed."""
        candidates = np.asarray(candidates, dtype=np.int64)
        self._fill(
            candidates,
            self._best_valid,
            self._best_cost,
            self._best_added_km,
            self._best_pickup_min,
            self._best_position,
        )
        cost = self._best_cost[:, candidates]
        return InsertionTable(
            candidates=candidates,
            feasible=cost < np.inf,
            cost=cost,
            added_km=self._best_added_km[:, candidates],
            pickup_min=self._best_pickup_min[:, candidates],
            position=self._best_position[:, candidates],
        )

    def assign(self, driver: int, booking: int) -> Assignment:
        """Give an open booking to a driver at the cheapest feasible place in its plan."""
        if self.status[booking] != OPEN:
            raise ValueError(f"booking {booking} is not open (status {int(self.status[booking])})")
        if not self._best_valid[driver, booking]:
            self.best_insertions(np.array([booking]))
        if not np.isfinite(self._best_cost[driver, booking]):
            raise ValueError(f"driver {driver} cannot serve booking {booking} in time")
        position = int(self._best_position[driver, booking])
        added_km = float(self._best_added_km[driver, booking])
        pickup_min = float(self._best_pickup_min[driver, booking])
        self.plans[driver].insert(position, booking)
        self.status[booking] = ASSIGNED
        self.assigned_driver[booking] = driver
        self._waiting -= 1
        self._visible_cache = None
        self.distance_km += added_km
        self._schedule(driver)
        late = pickup_min > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
        return Assignment(driver, booking, position, added_km, pickup_min, bool(late))

    # --- clock -------------------------------------------------------------------------------

    def next_event_min(self) -> float:
        """The next moment something changes for the dispatcher (``inf`` when nothing will)."""
        return next_event_kernel(
            self.now_min,
            self.status,
            self.release_min,
            self.earliest_min,
            self.latest_min,
            self.lookahead_min,
            self.plan_end_min,
            self.shift_start_min,
            UNRELEASED,
            OPEN,
        )

    def advance(self) -> AdvanceOutcome:
        """Move the clock to the next event (at least ``min_advance_min`` ahead)."""
        start = self.now_min
        target = max(self.next_event_min(), start + self.min_advance_min)
        if not np.isfinite(target):
            target = max(self.horizon_min, start + self.min_advance_min)
        return self._move_to(target)

    def advance_to(self, target_min: float) -> AdvanceOutcome:
        """Move the clock to ``target_min`` (never back): what happens by then happens
        (departures lock, bookings are released, windows that closed cancel their bookings)."""
        return self._move_to(max(float(target_min), self.now_min))

    def finish(self) -> AdvanceOutcome:
        """Run the rest of the day with no more dispatch decisions."""
        return self._move_to(np.inf)

    def _move_to(self, target: float) -> AdvanceOutcome:
        start = self.now_min
        km_before = self.distance_km
        picked, late = self._lock_departures(target)
        end = min(target, max(self.horizon_min, start))
        cancelled = self._release_and_cancel(end)
        if target >= self.horizon_min:
            cancelled += self._cancel_everything_open()
            extra_picked, extra_late = self._lock_departures(np.inf)
            picked += extra_picked
            late += extra_late
        self.now_min = max(end, start)
        # Inserting ahead of a driver's plan starts from max(anchor, now): that moved.
        self._best_valid[self.anchor_min < self.now_min] = False
        self._visible_cache = None
        if self.draws is None:
            return AdvanceOutcome(start, self.now_min, picked, late, cancelled)
        km_change = self.distance_km - km_before
        return AdvanceOutcome(start, self.now_min, picked, late, cancelled, km_change)

    def _lock_departures(self, until_min: float) -> tuple[int, int]:
        """Lock every planned booking whose driver sets off before ``until_min``."""
        if self.draws is not None:
            return self._lock_realised(until_min)
        picked = late = 0
        for driver in np.flatnonzero(self.next_departure_min <= until_min).tolist():
            plan = self.plans[driver]
            starts = self.plan_start[driver]
            departs = starts - self.plan_leg_min[driver]
            count = int(np.searchsorted(departs > until_min, True))
            if count == 0:
                continue
            locked = plan[:count]
            for booking, start in zip(locked, starts[:count], strict=True):
                self.status[booking] = SERVED
                self.pickup_min[booking] = start
                if start > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN:
                    late += 1
            last = locked[-1]
            self.anchor_min[driver] = self.plan_complete[driver][count - 1]
            self.anchor_vec[driver] = self.dropoff_vec[last]
            self.anchor_booking[driver] = last
            self.rides[driver] += count
            picked += count
            del plan[:count]
            self._schedule(driver)
        self.late_pickups += late
        return picked, late

    def _lock_realised(self, until_min: float) -> tuple[int, int]:
        """:meth:`_lock_departures` on an uncertain day: one booking at a time, each ride as
        it happens (its realised legs and service, or a no-show), the rest of the driver's
        plan re-timed from where and when the driver really is free."""
        draws = self.draws
        picked = late = 0
        while True:
            departs = self.next_departure_min
            leaving = np.flatnonzero((departs <= until_min) & np.isfinite(departs)).tolist()
            if not leaving:
                break
            for driver in leaving:
                plan = self.plans[driver]
                booking = plan[0]
                planned_leg_min = float(self.plan_leg_min[driver][0])
                departs = float(self.plan_start[driver][0]) - planned_leg_min
                travel = float(draws.travel_factor[booking])
                service = float(self.service_min[booking] * draws.service_factor[booking])
                start = max(departs + planned_leg_min * travel, float(self.earliest_min[booking]))
                self.pickup_min[booking] = start
                del plan[0]
                if draws.no_show[booking]:
                    self.status[booking] = NO_SHOW
                    self.anchor_min[driver] = start + service
                    self.anchor_vec[driver] = self.pickup_vec[booking]
                    self.distance_km -= float(self.ride_km[booking])
                    if plan:  # the next drive starts from the pickup, not the drop-off
                        following = self.pickup_vec[plan[0]]
                        here = self.pickup_vec[booking]
                        there = self.dropoff_vec[booking]
                        self.distance_km += float(
                            self.travel.distance_km(here, following)
                            - self.travel.distance_km(there, following)
                        )
                else:
                    self.status[booking] = SERVED
                    late += int(start > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN)
                    self.anchor_min[driver] = (
                        start + 2.0 * service + float(self.ride_min[booking]) * travel
                    )
                    self.anchor_vec[driver] = self.dropoff_vec[booking]
                    self.rides[driver] += 1
                    picked += 1
                self.anchor_booking[driver] = booking
                self._schedule(driver)
        self.late_pickups += late
        return picked, late

    def _release_and_cancel(self, at_min: float) -> int:
        count = release_and_cancel(
            self.status, self.release_min, self.latest_min, at_min, UNRELEASED, OPEN, CANCELLED
        )
        self._waiting -= count
        return count

    def _cancel_everything_open(self) -> int:
        waiting = (self.status == OPEN) | (self.status == UNRELEASED)
        self.status[waiting] = CANCELLED
        count = int(waiting.sum())
        self._waiting -= count
        return count

    # --- figures -----------------------------------------------------------------------------

    def planned_late_count(self) -> int:
        """Bookings in the drivers' plans (given, not yet set off for) whose planned pickup
        is late: what the shaping of both agent kinds charges when a plan changes."""
        plans = [plan for plan in self.plans if plan]
        if not plans:
            return 0
        bookings = np.concatenate([np.asarray(plan, dtype=np.int64) for plan in plans])
        starts = np.concatenate([self.plan_start[d] for d, plan in enumerate(self.plans) if plan])
        return int((starts > self.requested_min[bookings] + LATE_AFTER_REQUESTED_MIN).sum())

    def served_routes(self) -> list[list[int]]:
        """Each driver's served (locked) bookings, in the order it picked them up."""
        served = self.status == SERVED
        routes = []
        for driver in range(self.n_drivers):
            mine = np.flatnonzero(served & (self.assigned_driver == driver))
            routes.append(mine[np.argsort(self.pickup_min[mine], kind="stable")].tolist())
        return routes

    def metrics(self, reward: float = 0.0, decisions: int = 0) -> DayMetrics:
        served = self.status == SERVED
        n_served = int(served.sum())
        delays = np.maximum(self.pickup_min[served] - self.requested_min[served], 0.0)
        loaded_km = float(self.ride_km[served].sum())
        passenger_km = float((self.ride_km[served] * self.load[served]).sum())
        total = max(self.n_bookings, 1)
        return DayMetrics(
            reward=float(reward),
            completion_rate=n_served / total,
            late_pickup_rate=self.late_pickups / n_served if n_served else 0.0,
            cancelled=int((self.status == CANCELLED).sum()),
            distance_km=float(self.distance_km),
            empty_km=max(float(self.distance_km) - loaded_km, 0.0),
            pickup_delay_mean_min=float(delays.mean()) if n_served else 0.0,
            pickup_delay_p95_min=float(np.percentile(delays, 95)) if n_served else 0.0,
            load_gap=int(self.rides.max() - self.rides.min()) if self.n_drivers else 0,
            decisions=int(decisions),
            bookings=self.n_bookings,
            served=n_served,
            no_shows=int((self.status == NO_SHOW).sum()),
            occupancy=passenger_km / loaded_km if loaded_km else 0.0,
            ride_time_ratio=1.0 if n_served else 0.0,
        )
