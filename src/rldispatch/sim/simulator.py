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

from dataclasses import dataclass

import numpy as np

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Scenario
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.travel import TravelModel

UNRELEASED, OPEN, ASSIGNED, SERVED, CANCELLED = 0, 1, 2, 3, 4
FEASIBILITY_TOLERANCE_MIN = 1e-7
LATE_COST_KM_PER_MIN = 2.0
"""Insertion cost: one minute of lateness weighs as much as this many km of driving."""
DELAY_COST_KM_PER_MIN = 0.1
"""Insertion cost: one minute that an insertion pushes the next pickup back, in km."""


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


@dataclass(frozen=True)
class Assignment:
    driver: int
    booking: int
    position: int
    added_km: float
    pickup_min: float
    late: bool


@dataclass(frozen=True)
class AdvanceOutcome:
    """What happened while the clock moved forward."""

    from_min: float
    to_min: float
    picked_up: int
    late_pickups: int
    cancelled: int


class DaySimulator:
    def __init__(
        self, scenario: Scenario, lookahead_min: float = 90.0, min_advance_min: float = 1.0
    ) -> None:
        self.scenario = scenario
        self.lookahead_min = float(lookahead_min)
        self.min_advance_min = float(min_advance_min)
        self.travel = TravelModel(scenario)
        bookings, drivers = scenario.bookings, scenario.drivers
        self.n_bookings = len(bookings)
        self.n_drivers = len(drivers)
        self.horizon_min = float(scenario.horizon_min)

        def column(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64)

        self.release_min = column([b.release_min for b in bookings])
        self.earliest_min = column([b.earliest_min for b in bookings])
        self.latest_min = column([b.latest_min for b in bookings])
        self.requested_min = column([b.requested_min for b in bookings])
        self.service_min = column([b.service_min for b in bookings])
        self.priority = np.asarray([b.priority for b in bookings], dtype=np.int64)
        self.load = np.asarray([b.load for b in bookings], dtype=np.int64)
        self.pickup_xy = column([b.pickup for b in bookings]).reshape(-1, 2)
        self.dropoff_xy = column([b.dropoff for b in bookings]).reshape(-1, 2)
        self.pickup_vec = self.travel.embed(self.pickup_xy)
        self.dropoff_vec = self.travel.embed(self.dropoff_xy)
        self.minutes_per_km = self.travel.minutes_per_km(self.requested_min)
        self.ride_km = self.travel.distance_km(self.pickup_vec, self.dropoff_vec)
        self.ride_min = self.ride_km * self.minutes_per_km
        # Time from the start of the pickup to the end of the drop-off.
        self.pickup_to_free_min = 2.0 * self.service_min + self.ride_min

        self.driver_start_xy = column([d.start for d in drivers]).reshape(-1, 2)
        self.driver_start_vec = self.travel.embed(self.driver_start_xy)
        self.shift_start_min = column([d.shift[0] for d in drivers])
        self.shift_end_min = column([d.shift[1] for d in drivers])
        self.capacity = np.asarray([d.capacity for d in drivers], dtype=np.int64)
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.now_min = 0.0
        self.status = np.full(self.n_bookings, UNRELEASED, dtype=np.int64)
        self.assigned_driver = np.full(self.n_bookings, -1, dtype=np.int64)
        self.pickup_min = np.full(self.n_bookings, np.nan)
        self.anchor_min = self.shift_start_min.copy()
        self.anchor_vec = self.driver_start_vec.copy()
        self.anchor_booking = np.full(self.n_drivers, -1, dtype=np.int64)
        self.plans: list[list[int]] = [[] for _ in range(self.n_drivers)]
        self.plan_start: list[np.ndarray] = [np.empty(0)] * self.n_drivers
        self.plan_complete: list[np.ndarray] = [np.empty(0)] * self.n_drivers
        self.plan_slack: list[np.ndarray] = [np.empty(0)] * self.n_drivers
        self.plan_leg_min: list[np.ndarray] = [np.empty(0)] * self.n_drivers
        self.rides = np.zeros(self.n_drivers, dtype=np.int64)
        self.distance_km = 0.0
        self.late_pickups = 0
        self._positions_stale = True
        self._visible_cache: np.ndarray | None = None
        self._release_and_cancel(0.0)

    @property
    def done(self) -> bool:
        """True once every booking is assigned, served or cancelled."""
        return not np.any((self.status == UNRELEASED) | (self.status == OPEN))

    def visible_bookings(self) -> np.ndarray:
        """Open bookings that can be dispatched now, most pressing (earliest deadline) first."""
        if self._visible_cache is None:
            mask = (self.status == OPEN) & (self.earliest_min <= self.now_min + self.lookahead_min)
            indices = np.flatnonzero(mask)
            order = np.lexsort((indices, self.latest_min[indices]))
            self._visible_cache = indices[order]
        return self._visible_cache

    def driver_free_min(self) -> np.ndarray:
        """When each driver will have finished all it has been given (locked and planned)."""
        free = np.maximum(self.anchor_min, self.now_min)
        for driver, complete in enumerate(self.plan_complete):
            if complete.size:
                free[driver] = complete[-1]
        return free

    def driver_free_vec(self) -> np.ndarray:
        """Where each driver will be once it has finished all it has been given."""
        vec = self.anchor_vec.copy()
        for driver, plan in enumerate(self.plans):
            if plan:
                vec[driver] = self.dropoff_vec[plan[-1]]
        return vec

    def unplanned_drivers(self) -> np.ndarray:
        """Before the end of their shift, with no booking planned beyond the one (if any)
        they are on."""
        empty = np.fromiter((not plan for plan in self.plans), dtype=bool, count=self.n_drivers)
        return empty & (self.shift_end_min > self.now_min)

    def idle_drivers(self) -> np.ndarray:
        """On shift now, with nothing locked or planned."""
        empty = np.fromiter((not plan for plan in self.plans), dtype=bool, count=self.n_drivers)
        return (
            empty
            & (self.anchor_min <= self.now_min)
            & (self.shift_start_min <= self.now_min)
            & (self.shift_end_min > self.now_min)
        )

    # --- plans -------------------------------------------------------------------------------

    def _schedule(self, driver: int) -> None:
        """Recompute the times and slack of a driver's plan."""
        plan = self.plans[driver]
        size = len(plan)
        start = np.empty(size)
        complete = np.empty(size)
        leg = np.empty(size)
        time = max(self.anchor_min[driver], self.now_min)
        here = self.anchor_vec[driver]
        for k, booking in enumerate(plan):
            leg[k] = (
                self.travel.distance_km(here, self.pickup_vec[booking])
                * self.minutes_per_km[booking]
            )
            start[k] = max(time + leg[k], self.earliest_min[booking])
            complete[k] = start[k] + self.pickup_to_free_min[booking]
            time = complete[k]
            here = self.dropoff_vec[booking]
        slack = np.empty(size)
        if size:
            booking_latest = self.latest_min[plan]
            slack[-1] = min(booking_latest[-1] - start[-1], self.shift_end_min[driver] - time)
            for k in range(size - 2, -1, -1):
                wait_next = start[k + 1] - (complete[k] + leg[k + 1])
                slack[k] = min(booking_latest[k] - start[k], wait_next + slack[k + 1])
        self.plan_start[driver] = start
        self.plan_complete[driver] = complete
        self.plan_slack[driver] = slack
        self.plan_leg_min[driver] = leg
        self._positions_stale = True

    def _build_positions(self) -> None:
        """Stack every driver's insertion positions into padded arrays."""
        n_positions = 1 + max(len(plan) for plan in self.plans)
        shape = (self.n_drivers, n_positions)
        self._pos_valid = np.zeros(shape, dtype=bool)
        self._pos_prev_min = np.zeros(shape)
        self._pos_prev_vec = np.zeros((*shape, self.anchor_vec.shape[1]))
        self._pos_has_next = np.zeros(shape, dtype=bool)
        self._pos_next_booking = np.zeros(shape, dtype=np.int64)
        self._pos_next_start = np.zeros(shape)
        self._pos_next_slack = np.zeros(shape)
        self._pos_prev_next_km = np.zeros(shape)
        for driver, plan in enumerate(self.plans):
            size = len(plan)
            self._pos_valid[driver, : size + 1] = True
            self._pos_prev_min[driver, 0] = self.anchor_min[driver]
            self._pos_prev_vec[driver, 0] = self.anchor_vec[driver]
            if size:
                self._pos_prev_min[driver, 1 : size + 1] = self.plan_complete[driver]
                self._pos_prev_vec[driver, 1 : size + 1] = self.dropoff_vec[plan]
                self._pos_has_next[driver, :size] = True
                self._pos_next_booking[driver, :size] = plan
                self._pos_next_start[driver, :size] = self.plan_start[driver]
                self._pos_next_slack[driver, :size] = self.plan_slack[driver]
                self._pos_prev_next_km[driver, :size] = (
                    self.plan_leg_min[driver] / self.minutes_per_km[plan]
                )
        self._positions_stale = False

    def insertion_table(
        self, candidates: np.ndarray, drivers: np.ndarray | None = None
    ) -> InsertionTable:
        """Cheapest feasible insertion of each candidate booking into each driver's plan."""
        if self._positions_stale:
            self._build_positions()
        candidates = np.asarray(candidates, dtype=np.int64)
        rows = slice(None) if drivers is None else np.asarray(drivers, dtype=np.int64)
        valid = self._pos_valid[rows]
        prev_min = np.maximum(self._pos_prev_min[rows], self.now_min)
        prev_min[:, 1:] = self._pos_prev_min[rows][:, 1:]
        prev_vec = self._pos_prev_vec[rows]
        has_next = self._pos_has_next[rows]
        next_booking = self._pos_next_booking[rows]

        to_pickup_km = self.travel.distance_km(
            prev_vec[:, :, None, :], self.pickup_vec[candidates][None, None, :, :]
        )
        start = np.maximum(
            prev_min[:, :, None] + to_pickup_km * self.minutes_per_km[candidates],
            self.earliest_min[candidates],
        )
        complete = start + self.pickup_to_free_min[candidates]
        to_next_km = self.travel.distance_km(
            self.dropoff_vec[candidates][None, None, :, :],
            self.pickup_vec[next_booking][:, :, None, :],
        )
        next_start = np.maximum(
            complete + to_next_km * self.minutes_per_km[next_booking][:, :, None],
            self.earliest_min[next_booking][:, :, None],
        )
        delay = next_start - self._pos_next_start[rows][:, :, None]
        shift_end = self.shift_end_min[rows][:, None, None]
        tolerance = FEASIBILITY_TOLERANCE_MIN
        feasible = (
            valid[:, :, None]
            & (start <= self.latest_min[candidates] + tolerance)
            & (self.load[candidates] <= self.capacity[rows][:, None])[:, None, :]
            & np.where(
                has_next[:, :, None],
                delay <= self._pos_next_slack[rows][:, :, None] + tolerance,
                complete <= shift_end + tolerance,
            )
        )
        added_km = (
            to_pickup_km
            + self.ride_km[candidates]
            + np.where(
                has_next[:, :, None], to_next_km - self._pos_prev_next_km[rows][:, :, None], 0.0
            )
        )
        late_min = np.maximum(
            start - self.requested_min[candidates] - LATE_AFTER_REQUESTED_MIN, 0.0
        )
        cost = (
            added_km
            + LATE_COST_KM_PER_MIN * late_min
            + DELAY_COST_KM_PER_MIN * np.where(has_next[:, :, None], delay, 0.0)
        )
        cost = np.where(feasible, cost, np.inf)
        position = np.argmin(cost, axis=1)
        pick = (np.arange(cost.shape[0])[:, None], position, np.arange(cost.shape[2])[None, :])
        return InsertionTable(
            candidates=candidates,
            feasible=np.any(feasible, axis=1),
            cost=cost[pick],
            added_km=added_km[pick],
            pickup_min=start[pick],
            position=position,
        )

    def assign(self, driver: int, booking: int) -> Assignment:
        """Give an open booking to a driver at the cheapest feasible place in its plan."""
        if self.status[booking] != OPEN:
            raise ValueError(f"booking {booking} is not open (status {int(self.status[booking])})")
        table = self.insertion_table(np.array([booking]), np.array([driver]))
        if not table.feasible[0, 0]:
            raise ValueError(f"driver {driver} cannot serve booking {booking} in time")
        position = int(table.position[0, 0])
        self.plans[driver].insert(position, booking)
        self.status[booking] = ASSIGNED
        self.assigned_driver[booking] = driver
        self._visible_cache = None
        added_km = float(table.added_km[0, 0])
        self.distance_km += added_km
        self._schedule(driver)
        pickup_min = float(table.pickup_min[0, 0])
        late = pickup_min > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
        return Assignment(driver, booking, position, added_km, pickup_min, bool(late))

    # --- clock -------------------------------------------------------------------------------

    def next_event_min(self) -> float:
        """The next moment something changes for the dispatcher (``inf`` when nothing will)."""
        now = self.now_min
        candidates = [np.inf]
        unreleased = self.status == UNRELEASED
        if unreleased.any():
            candidates.append(self.release_min[unreleased].min())
        open_mask = self.status == OPEN
        if open_mask.any():
            candidates.append(self.latest_min[open_mask].min())
            appear = self.earliest_min[open_mask] - self.lookahead_min
            later = appear[appear > now]
            if later.size:
                candidates.append(later.min())
            becomes_free = self.driver_free_min()
            later = becomes_free[becomes_free > now]
            if later.size:
                candidates.append(later.min())
            later = self.shift_start_min[self.shift_start_min > now]
            if later.size:
                candidates.append(later.min())
        return float(min(candidates))

    def advance(self) -> AdvanceOutcome:
        """Move the clock to the next event (at least ``min_advance_min`` ahead)."""
        start = self.now_min
        target = max(self.next_event_min(), start + self.min_advance_min)
        if not np.isfinite(target):
            target = max(self.horizon_min, start + self.min_advance_min)
        return self._move_to(target)

    def finish(self) -> AdvanceOutcome:
        """Run the rest of the day with no more dispatch decisions."""
        return self._move_to(np.inf)

    def _move_to(self, target: float) -> AdvanceOutcome:
        start = self.now_min
        picked, late = self._lock_departures(target)
        end = min(target, max(self.horizon_min, start))
        cancelled = self._release_and_cancel(end)
        if target >= self.horizon_min:
            cancelled += self._cancel_everything_open()
            extra_picked, extra_late = self._lock_departures(np.inf)
            picked += extra_picked
            late += extra_late
        self.now_min = max(end, start)
        if picked:
            self._positions_stale = True
        self._visible_cache = None
        return AdvanceOutcome(start, self.now_min, picked, late, cancelled)

    def _lock_departures(self, until_min: float) -> tuple[int, int]:
        """Lock every planned booking whose driver sets off before ``until_min``."""
        picked = late = 0
        for driver, plan in enumerate(self.plans):
            while plan:
                start = self.plan_start[driver][0]
                depart = start - self.plan_leg_min[driver][0]
                if depart > until_min:
                    break
                booking = plan.pop(0)
                self.status[booking] = SERVED
                self.pickup_min[booking] = start
                self.anchor_min[driver] = self.plan_complete[driver][0]
                self.anchor_vec[driver] = self.dropoff_vec[booking]
                self.anchor_booking[driver] = booking
                self.rides[driver] += 1
                picked += 1
                if start > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN:
                    late += 1
                self.plan_start[driver] = self.plan_start[driver][1:]
                self.plan_complete[driver] = self.plan_complete[driver][1:]
                self.plan_slack[driver] = self.plan_slack[driver][1:]
                self.plan_leg_min[driver] = self.plan_leg_min[driver][1:]
        self.late_pickups += late
        return picked, late

    def _release_and_cancel(self, at_min: float) -> int:
        released = (self.status == UNRELEASED) & (self.release_min <= at_min)
        self.status[released] = OPEN
        expired = (self.status == OPEN) & (self.latest_min < at_min)
        self.status[expired] = CANCELLED
        return int(expired.sum())

    def _cancel_everything_open(self) -> int:
        waiting = (self.status == OPEN) | (self.status == UNRELEASED)
        self.status[waiting] = CANCELLED
        return int(waiting.sum())

    # --- figures -----------------------------------------------------------------------------

    def metrics(self, reward: float = 0.0, decisions: int = 0) -> DayMetrics:
        served = self.status == SERVED
        n_served = int(served.sum())
        delays = np.maximum(self.pickup_min[served] - self.requested_min[served], 0.0)
        loaded_km = float(self.ride_km[served].sum())
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
        )
