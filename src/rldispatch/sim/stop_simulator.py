"""The day's simulation with plans of stops: shared rides, places by kind, maximum ride
times and drivers' breaks.

A driver's plan is an ordered list of stops (:mod:`rldispatch.sim.stop_kernels`): pickups
and drop-offs interleaved when rides are shared, and its breaks, which are in the plan from
the start of the day. Giving a booking to a driver puts its pickup and its drop-off at the
cheapest feasible pair of positions. A driver sets off for each stop just in time (as late as
it can without starting the stop later); a stop it has set off for is locked, and a booking is
served once its pickup is locked, as in :class:`~rldispatch.sim.simulator.DaySimulator`. What
each driver did is kept stop by stop (:attr:`StopDaySimulator.stop_log`), which
:func:`rldispatch.sim.validator.check_played_day` checks.

A scenario whose ``shared_rides`` is false keeps one booking on board at a time.
:func:`day_simulator` builds this simulator for a scenario with shared rides, breaks or
maximum ride times (``Scenario.has_stops``) and a :class:`DaySimulator` of booking plans
otherwise, so a day without them plays exactly as it always has.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from rldispatch.domain import (
    LATE_AFTER_REQUESTED_MIN,
    MAX_BREAKS,
    PLACE_KINDS,
    Scenario,
    ScenarioError,
)
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import (
    ASSIGNED,
    FEASIBILITY_TOLERANCE_MIN,
    INSERTION_RULES,
    OPEN,
    SERVED,
    Assignment,
    DaySimulator,
    InsertionTable,
)
from rldispatch.sim.stop_kernels import (
    BREAK,
    DROPOFF,
    PICKUP,
    fill_stop_insertions,
    schedule_stops,
    stop_insertion_effects,
)

ONE_BOOKING_ON_BOARD = 1
MANY_BOOKINGS_ON_BOARD = 1_000_000


def day_simulator(
    scenario: Scenario,
    lookahead_min: float = 90.0,
    min_advance_min: float = 1.0,
    **options: Any,
) -> DaySimulator:
    """The simulator of a day: plans of stops when it has shared rides, breaks or maximum
    ride times, plans of whole bookings otherwise (``options`` go to either)."""
    kind = StopDaySimulator if scenario.has_stops else DaySimulator
    return kind(scenario, lookahead_min=lookahead_min, min_advance_min=min_advance_min, **options)


@dataclass(frozen=True)
class LoggedStop:
    """A stop a driver set off for: what (``kind``, ``ref``: a booking or a break index),
    when it started, the km of the leg to it, and the places by kind on board once done."""

    driver: int
    kind: int
    ref: int
    start_min: float
    leg_km: float
    onboard: tuple[int, ...]


class StopDaySimulator(DaySimulator):
    """A day of plans of stops (see the module docstring); the same interface as
    :class:`DaySimulator`, whose ``plans`` here list each driver's bookings not yet picked up
    (in stop order) and ``plan_start`` their planned pickups."""

    def __init__(
        self,
        scenario: Scenario,
        lookahead_min: float = 90.0,
        min_advance_min: float = 1.0,
        **options: Any,
    ) -> None:
        uncertainty = options.get("uncertainty")
        if uncertainty is not None and uncertainty.active:
            raise ScenarioError(
                f"{scenario.name}: an uncertain day (travel noise, no-shows) with shared rides, "
                "breaks or maximum ride times is not simulated yet"
            )
        drivers = scenario.drivers
        self.has_stops = scenario.has_stops
        self.max_bookings_on_board = (
            MANY_BOOKINGS_ON_BOARD if scenario.shared_rides else ONE_BOOKING_ON_BOARD
        )
        self.max_ride_limit_min = np.asarray(
            [np.inf if b.max_ride_min is None else b.max_ride_min for b in scenario.bookings],
            dtype=np.float64,
        )
        self.break_count = np.asarray([len(d.breaks) for d in drivers], dtype=np.int64)
        shape = (len(drivers), max(MAX_BREAKS, 1))
        self.break_earliest_min = np.zeros(shape)
        self.break_latest_min = np.zeros(shape)
        self.break_duration_min = np.zeros(shape)
        for index, driver in enumerate(drivers):
            for k, pause in enumerate(driver.breaks):
                self.break_earliest_min[index, k] = pause.earliest_min
                self.break_latest_min[index, k] = pause.latest_min
                self.break_duration_min[index, k] = pause.duration_min
        super().__init__(scenario, lookahead_min, min_advance_min, **options)
        self._booking_arrays = (
            self.pickup_vec,
            self.dropoff_vec,
            self.minutes_per_km,
            self.earliest_min,
            self.latest_min,
            self.service_min,
            self.load_by_kind,
            self.max_ride_limit_min,
        )
        self._fixed_names = self._fixed_names | {"_booking_arrays"}
        self.reset()  # again, now that the breaks can be scheduled

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        n_drivers, n_bookings = self.n_drivers, self.n_bookings
        self.stops: list[list[tuple[int, int]]] = [
            [(BREAK, k) for k in range(int(self.break_count[d]))] for d in range(n_drivers)
        ]
        self.stop_log: list[LoggedStop] = []
        self.anchor_xy = self.driver_start_xy.copy()
        """Where each driver is, or will be once the stop it has set off for is done (the
        day's coordinates)."""
        self.onboard = np.zeros((n_drivers, len(PLACE_KINDS)), dtype=np.int64)
        self.onboard_bookings: list[list[int]] = [[] for _ in range(n_drivers)]
        self.picked_done_min = np.full(n_bookings, np.nan)
        self.dropoff_min = np.full(n_bookings, np.nan)
        self.shared = np.zeros(n_bookings, dtype=bool)
        self.breaks_taken = 0
        self.stop_start: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.stop_leg_min: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.stop_leg_km: list[np.ndarray] = [np.empty(0)] * n_drivers
        self.plan_km = np.zeros(n_drivers)
        width = 4
        self._stop_kinds = np.zeros((n_drivers, width), dtype=np.int64)
        self._stop_refs = np.zeros((n_drivers, width), dtype=np.int64)
        self._stop_starts = np.zeros((n_drivers, width))
        self._stop_sizes = np.zeros(n_drivers, dtype=np.int64)
        if getattr(self, "_booking_arrays", None) is not None:
            for driver in range(n_drivers):
                self._schedule(driver)

    def size_insertion_cache(self, width: int) -> None:
        super().size_insertion_cache(width)
        old = getattr(self, "_best_dropoff_position", None)
        new = np.ones((self.n_drivers, width), dtype=np.int64)
        if old is not None:
            kept = min(width, old.shape[1])
            new[:, :kept] = old[:, :kept]
        self._best_dropoff_position = new

    def unplanned_drivers(self) -> np.ndarray:
        """Before the end of their shift, with no pickup planned (beyond the passengers they
        may be carrying now)."""
        return self._no_pickup_planned() & (self.shift_end_min > self.now_min)

    def idle_drivers(self) -> np.ndarray:
        """On shift now, with no pickup planned and nobody on board."""
        return (
            self.unplanned_drivers()
            & (self.onboard.sum(axis=1) == 0)
            & (self.anchor_min <= self.now_min)
            & (self.shift_start_min <= self.now_min)
        )

    def driver_free_vec(self) -> np.ndarray:
        """Where each driver will be once the passengers it carries are dropped off: its last
        planned drop-off when no pickup is planned, else where it is now (embedded)."""
        free = self.anchor_vec.copy()
        for driver, stops in enumerate(self.stops):
            dropoffs = [ref for kind, ref in stops if kind == DROPOFF]
            if dropoffs:
                free[driver] = self.dropoff_vec[dropoffs[-1]]
        return free

    def _no_pickup_planned(self) -> np.ndarray:
        return np.asarray([not plan for plan in self.plans], dtype=bool)

    # --- plans -------------------------------------------------------------------------------

    def _run_schedule(self, driver: int) -> tuple[bool, float, float, np.ndarray, ...]:
        stops = self.stops[driver]
        size = len(stops)
        kinds = np.asarray([kind for kind, _ in stops], dtype=np.int64)
        refs = np.asarray([ref for _, ref in stops], dtype=np.int64)
        start, leg_min, leg_km = np.empty(size), np.empty(size), np.empty(size)
        feasible, km, end = schedule_stops(
            kinds,
            refs,
            size,
            max(self.anchor_min[driver], self.now_min),
            self.anchor_vec[driver],
            self.onboard[driver],
            len(self.onboard_bookings[driver]),
            self.capacity_by_kind[driver],
            self.max_bookings_on_board,
            self._booking_arrays,
            self.picked_done_min,
            self.break_earliest_min[driver],
            self.break_latest_min[driver],
            self.break_duration_min[driver],
            self.shift_end_min[driver],
            self.travel.kernel_args,
            FEASIBILITY_TOLERANCE_MIN,
            start,
            leg_min,
            leg_km,
        )
        return feasible, km, end, kinds, refs, start, leg_min, leg_km

    def _schedule(self, driver: int) -> None:
        """Recompute the times of a driver's stops and what the other methods read of them."""
        _, km, end, kinds, refs, start, leg_min, leg_km = self._run_schedule(driver)
        size = kinds.size
        self.stop_start[driver] = start
        self.stop_leg_min[driver] = leg_min
        self.stop_leg_km[driver] = leg_km
        self.plan_km[driver] = km
        pickups = np.flatnonzero(kinds == PICKUP)
        self.plans[driver] = refs[pickups].tolist()
        self.plan_start[driver] = start[pickups]
        self.plan_end_min[driver] = end if size else self.anchor_min[driver]
        dropoffs = np.flatnonzero(kinds == DROPOFF)
        self.plan_end_booking[driver] = (
            refs[dropoffs[-1]] if dropoffs.size else self.anchor_booking[driver]
        )
        self.next_departure_min[driver] = start[0] - leg_min[0] if size else np.inf
        if size > self._stop_kinds.shape[1]:
            self._widen_stops(2 * size)
        self._stop_kinds[driver, :size] = kinds
        self._stop_refs[driver, :size] = refs
        self._stop_starts[driver, :size] = start
        self._stop_sizes[driver] = size
        self._pos_has_next[driver, 0] = bool(pickups.size)
        self._best_valid[driver] = False

    def _widen_stops(self, width: int) -> None:
        def widen(array: np.ndarray) -> np.ndarray:
            wider = np.zeros((array.shape[0], width), dtype=array.dtype)
            wider[:, : array.shape[1]] = array
            return wider

        self._stop_kinds = widen(self._stop_kinds)
        self._stop_refs = widen(self._stop_refs)
        self._stop_starts = widen(self._stop_starts)

    def _plan_state(self) -> tuple:
        """The drivers' plans of stops as the compiled kernels read them (``plan_state``)."""
        return (
            self._stop_kinds,
            self._stop_refs,
            self._stop_sizes,
            self._stop_starts,
            self.anchor_min,
            self.anchor_vec,
            self.onboard,
            np.asarray([len(b) for b in self.onboard_bookings], dtype=np.int64),
        )

    def _fill(
        self,
        candidates: np.ndarray,
        valid: np.ndarray,
        cost: np.ndarray,
        added_km: np.ndarray,
        pickup_min: np.ndarray,
        position: np.ndarray,
        dropoff_position: np.ndarray | None = None,
    ) -> None:
        if dropoff_position is None:
            dropoff_position = np.ones_like(position)
        fill_stop_insertions(
            candidates,
            self.now_min,
            (*self._plan_state(), self.plan_km),
            self._booking_arrays,
            (self.requested_min,),
            self.fits,
            self.capacity_by_kind,
            self.max_bookings_on_board,
            self.picked_done_min,
            (self.break_earliest_min, self.break_latest_min, self.break_duration_min),
            self.shift_end_min,
            self.travel.kernel_args,
            INSERTION_RULES,
            valid,
            cost,
            added_km,
            pickup_min,
            position,
            dropoff_position,
        )

    def insertion_table(self, candidates: np.ndarray) -> InsertionTable:
        candidates = np.asarray(candidates, dtype=np.int64)
        shape = (self.n_drivers, self.n_bookings)
        valid = np.zeros(shape, dtype=bool)
        cost, added_km, pickup_min = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        position = np.zeros(shape, dtype=np.int64)
        dropoff = np.ones(shape, dtype=np.int64)
        self._fill(candidates, valid, cost, added_km, pickup_min, position, dropoff)
        cost = cost[:, candidates]
        return InsertionTable(
            candidates,
            np.isfinite(cost),
            cost,
            added_km[:, candidates],
            pickup_min[:, candidates],
            position[:, candidates],
            dropoff[:, candidates],
        )

    def best_insertions(self, candidates: np.ndarray) -> InsertionTable:
        candidates = np.asarray(candidates, dtype=np.int64)
        self._fill(
            candidates,
            self._best_valid,
            self._best_cost,
            self._best_added_km,
            self._best_pickup_min,
            self._best_position,
            self._best_dropoff_position,
        )
        cost = self._best_cost[:, candidates]
        return InsertionTable(
            candidates=candidates,
            feasible=cost < np.inf,
            cost=cost,
            added_km=self._best_added_km[:, candidates],
            pickup_min=self._best_pickup_min[:, candidates],
            position=self._best_position[:, candidates],
            dropoff_position=self._best_dropoff_position[:, candidates],
        )

    def assign(self, driver: int, booking: int) -> Assignment:
        """Give an open booking to a driver at the cheapest feasible pickup and drop-off
        positions in its stops."""
        if self.status[booking] != OPEN:
            raise ValueError(f"booking {booking} is not open (status {int(self.status[booking])})")
        if not self._best_valid[driver, booking]:
            self.best_insertions(np.array([booking]))
        if not np.isfinite(self._best_cost[driver, booking]):
            raise ValueError(f"driver {driver} cannot serve booking {booking} in time")
        position = int(self._best_position[driver, booking])
        dropoff_position = int(self._best_dropoff_position[driver, booking])
        added_km = float(self._best_added_km[driver, booking])
        pickup_min = float(self._best_pickup_min[driver, booking])
        stops = self.stops[driver]
        stops.insert(position, (PICKUP, booking))
        stops.insert(dropoff_position, (DROPOFF, booking))
        self.status[booking] = ASSIGNED
        self.assigned_driver[booking] = driver
        self._waiting -= 1
        self._visible_cache = None
        self.distance_km += added_km
        self._schedule(driver)
        late = pickup_min > self.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
        return Assignment(
            driver, booking, position, added_km, pickup_min, bool(late), dropoff_position
        )

    def insertion_knock_on(
        self, driver: int, booking: int, position: int, dropoff_position: int
    ) -> tuple[int, float]:
        """What giving ``booking`` to ``driver`` at these positions does to the pickups
        already planned: how many it makes late and the minutes of lateness it adds."""
        stops = list(self.stops[driver])
        stops.insert(position, (PICKUP, booking))
        stops.insert(dropoff_position, (DROPOFF, booking))
        before = dict(zip(self.plans[driver], self.plan_start[driver].tolist(), strict=True))
        saved = self.stops[driver]
        self.stops[driver] = stops
        try:
            _, _, _, kinds, refs, start, _, _ = self._run_schedule(driver)
        finally:
            self.stops[driver] = saved
        made_late, late_added = 0, 0.0
        for kind, ref, at in zip(kinds.tolist(), refs.tolist(), start.tolist(), strict=True):
            if kind != PICKUP or ref == booking:
                continue
            limit = self.requested_min[ref] + LATE_AFTER_REQUESTED_MIN
            made_late += int(at > limit >= before[ref])
            late_added += max(at - limit, 0.0) - max(before[ref] - limit, 0.0)
        return made_late, late_added

    def insertion_effects(
        self,
        pair_driver: np.ndarray,
        pair_booking: np.ndarray,
        position: np.ndarray,
        dropoff_position: np.ndarray,
    ) -> np.ndarray:
        """What each insertion (driver, booking, pickup and drop-off positions as
        :meth:`best_insertions` gives them) does to the driver's stops, one row per pair:
        :func:`~rldispatch.sim.stop_kernels.stop_insertion_effects`'s eleven columns (planned
        pickups made late, delays of the planned pickups, of the drop-offs of those on board
        and of those planned, the ride time over the direct time, places left by kind, shared).
        """
        n = int(np.size(pair_driver))
        out = np.zeros((n, 11))
        if n == 0:
            return out
        stops = self._plan_state()
        breaks = (self.break_earliest_min, self.break_latest_min, self.break_duration_min)
        stop_insertion_effects(
            np.asarray(pair_driver, dtype=np.int64),
            np.asarray(pair_booking, dtype=np.int64),
            np.asarray(position, dtype=np.int64),
            np.asarray(dropoff_position, dtype=np.int64),
            self.now_min,
            stops,
            self._booking_arrays,
            self.capacity_by_kind,
            self.max_bookings_on_board,
            self.picked_done_min,
            breaks,
            self.shift_end_min,
            self.travel.kernel_args,
            FEASIBILITY_TOLERANCE_MIN,
            self.requested_min,
            self.ride_min,
            float(LATE_AFTER_REQUESTED_MIN),
            out,
        )
        return out

    # --- clock -------------------------------------------------------------------------------

    def _lock_departures(self, until_min: float) -> tuple[int, int]:
        """Lock every stop whose driver sets off for it before ``until_min``."""
        picked = late = 0
        for driver in np.flatnonzero(self.next_departure_min <= until_min).tolist():
            stops = self.stops[driver]
            starts = self.stop_start[driver]
            legs_min = self.stop_leg_min[driver]
            departs = starts - legs_min
            count = int(np.searchsorted(departs > until_min, True))
            if count == 0:
                continue
            for k in range(count):
                kind, ref = stops[k]
                start = float(starts[k])
                aboard = self.onboard_bookings[driver]
                if kind == PICKUP:
                    self.status[ref] = SERVED
                    self.pickup_min[ref] = start
                    if start > self.requested_min[ref] + LATE_AFTER_REQUESTED_MIN:
                        late += 1
                    if aboard:
                        self.shared[ref] = True
                        self.shared[aboard] = True
                    aboard.append(ref)
                    self.onboard[driver] += self.load_by_kind[ref]
                    self.picked_done_min[ref] = start + self.service_min[ref]
                    self.rides[driver] += 1
                    picked += 1
                    done, where = start + self.service_min[ref], self.pickup_vec[ref]
                    self.anchor_xy[driver] = self.pickup_xy[ref]
                elif kind == DROPOFF:
                    aboard.remove(ref)
                    self.onboard[driver] -= self.load_by_kind[ref]
                    self.dropoff_min[ref] = start
                    self.anchor_booking[driver] = ref
                    done, where = start + self.service_min[ref], self.dropoff_vec[ref]
                    self.anchor_xy[driver] = self.dropoff_xy[ref]
                else:
                    self.breaks_taken += 1
                    done, where = start + self.break_duration_min[driver, ref], None
                self.stop_log.append(
                    LoggedStop(
                        driver,
                        kind,
                        ref,
                        start,
                        float(self.stop_leg_km[driver][k]),
                        tuple(self.onboard[driver].tolist()),
                    )
                )
                self.anchor_min[driver] = done
                if where is not None:
                    self.anchor_vec[driver] = where
            del stops[:count]
            self._schedule(driver)
        self.late_pickups += late
        return picked, late

    # --- figures -----------------------------------------------------------------------------

    def metrics(self, reward: float = 0.0, decisions: int = 0) -> DayMetrics:
        base = super().metrics(reward, decisions)
        passenger_km = loaded_km = 0.0
        onboard_before: dict[int, int] = {}
        for stop in self.stop_log:
            aboard = onboard_before.get(stop.driver, 0)
            if aboard:
                passenger_km += stop.leg_km * aboard
                loaded_km += stop.leg_km
            onboard_before[stop.driver] = sum(stop.onboard)
        dropped = np.isfinite(self.dropoff_min) & (self.ride_min > 0)
        ride = self.dropoff_min[dropped] - self.picked_done_min[dropped]
        served = self.status == SERVED
        missed = int(self.break_count.sum()) - self.breaks_taken
        return dataclasses.replace(
            base,
            empty_km=max(float(self.distance_km) - loaded_km, 0.0),
            occupancy=passenger_km / loaded_km if loaded_km else 0.0,
            shared_ride_share=float(self.shared[served].mean()) if served.any() else 0.0,
            ride_time_ratio=float((ride / self.ride_min[dropped]).mean()) if ride.size else 0.0,
            breaks_taken=self.breaks_taken,
            breaks_missed=max(missed, 0),
        )
