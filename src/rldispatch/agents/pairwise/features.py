"""Features of a dispatch state for the pairwise Q-network, for any fleet size.

A state is four sets of numbers, none tied to a fixed number of drivers or bookings:

- one row per **driver** (:data:`DRIVER_FEATURES`),
- one row per visible **booking** (:data:`BOOKING_FEATURES`),
- one row per **candidate pair** (driver, booking) (:data:`PAIR_FEATURES`): the cheapest
  feasible insertion the env already computed (``env.table``: ETA, detour, lateness, slack
  to the window) and its knock-on effect on the driver's plan (bookings it would make late);
  on days of stops (shared rides) also the delay it imposes on the drop-offs of those on
  board and planned, the booking's ride time over its direct time, the places of each kind
  left while it is on board and whether it shares the vehicle,
- one **global** row (:data:`GLOBAL_FEATURES`).

Candidates are, for each visible booking, the ``candidates_per_booking`` feasible drivers
with the cheapest insertion (the insertion heuristic's shortlist). Every feature is computed
per driver, per booking or per pair, or is a symmetric aggregate (count, mean, minimum), so
reordering drivers or bookings reorders the rows and changes nothing else. Ties between
drivers (or bookings) are broken by their ids, never by their position.

Units: times in hours (``_h``) or tens of minutes (``_10min``), distances in tens of km.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rldispatch.agents.pairwise.feature_kernels import (
    candidate_kernel,
    pair_rows,
    plain_pair_rows,
    state_rows,
)
from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.env import DispatchEnv
from rldispatch.sim import DaySimulator
from rldispatch.sim.frame import LocalFrame
from rldispatch.sim.knock_on import knock_on_booking_state
from rldispatch.sim.simulator import OPEN, InsertionTable

FEATURE_VERSION = 2
"""Changes whenever a feature changes meaning; model files record it."""

DRIVER_FEATURES = (
    "free_in_h",  # when it will have finished all it has been given, from now
    "planned_bookings_div4",  # bookings given but not yet set off for
    "rides_done_div10",
    "rides_above_mean_div10",  # rides done minus the fleet's mean
    "shift_left_h",
    "on_shift",
    "shift_starts_in_h",
    "extra_capacity",  # seats beyond one
    "idle",  # on shift with nothing locked or planned
    "free_east_10km",  # where it will be free, from the day's centre
    "free_north_10km",
)
BOOKING_FEATURES = (
    "window_closes_in_h",
    "window_opens_in_h",
    "requested_in_h",
    "urgent",
    "extra_load",
    "ride_10km",
    "feasible_driver_share",
    "feasible_drivers_div10",
    "best_cost_10km",  # cheapest insertion over the drivers
    "regret_10km",  # second cheapest minus cheapest (capped; large when one driver can)
    "pickup_east_10km",
    "pickup_north_10km",
    "dropoff_east_10km",
    "dropoff_north_10km",
)
PAIR_FEATURES = (
    "cost_10km",  # the insertion cost (km plus lateness and delay weights)
    "cost_above_booking_best_10km",
    "cost_above_driver_best_10km",
    "added_10km",  # detour: km the insertion adds to the plan
    "eta_h",  # pickup start, from now
    "pickup_after_requested_10min",
    "late",  # the pickup itself would be late
    "late_10min",
    "slack_10min",  # window close minus pickup
    "position_share",  # where in the plan it goes, 0 = first, 1 = last
    "appended",  # goes at the end of the plan
    "knock_on_late",  # planned bookings the insertion would make late
    "knock_on_delay_10min",  # how much it pushes the next planned pickup back
    "knock_on_total_delay_10min",  # summed over the rest of the plan
    "cheapest",  # the cheapest driver for this booking
    "cost_rank_share",  # rank of this driver's cost among the booking's candidates
    "onboard_delay_10min",  # drop-offs of the passengers on board pushed back, summed
    "planned_dropoff_delay_10min",  # drop-offs of the bookings planned pushed back, summed
    "ride_time_ratio",  # the booking's ride time over its direct time (1: carried alone)
    "seated_left_div4",  # places of each kind left while it is on board (the least)
    "wheelchair_left",
    "stretcher_left",
    "shared",  # another passenger on board during its ride
)
GLOBAL_FEATURES = (
    "time_of_day",  # fraction of the horizon gone
    "drivers_div30",
    "visible_per_driver",
    "open_not_visible_per_driver",  # released bookings not yet dispatchable
    "idle_share",
    "on_shift_share",
    "candidate_share",  # candidate pairs / (visible bookings * candidates per booking)
    "planned_per_driver",
    "planned_late_per_driver",  # planned pickups already late (the shaping potential)
)

REGRET_CAP_10KM = 5.0
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PairState:
    """The features of one decision state.

    :param drivers: ``(D, len(DRIVER_FEATURES))``.
    :param bookings: ``(M, len(BOOKING_FEATURES))``, row ``j`` = visible slot ``j``.
    :param pairs: ``(P, len(PAIR_FEATURES))``, one row per candidate pair.
    :param pair_driver: ``(P,)`` driver index of each candidate.
    :param pair_slot: ``(P,)`` visible slot of each candidate.
    :param globals: ``(len(GLOBAL_FEATURES),)``.
    :param pair_order: ``(P,)`` a position-free tie-break key of each candidate (booking id
        rank, then driver id rank): among equal scores the smallest key wins.
    """

    drivers: np.ndarray
    bookings: np.ndarray
    pairs: np.ndarray
    pair_driver: np.ndarray
    pair_slot: np.ndarray
    globals: np.ndarray
    pair_order: np.ndarray
    visible_slots: int

    @property
    def n_pairs(self) -> int:
        return int(self.pair_driver.size)

    def action(self, candidate: int) -> int:
        """The env action of candidate pair ``candidate`` (``-1`` means wait: action 0)."""
        if candidate < 0:
            return 0
        return (
            1
            + int(self.pair_driver[candidate]) * self.visible_slots
            + int(self.pair_slot[candidate])
        )

    def candidate_of_action(self, action: int) -> int:
        """The candidate index of an env action (``-1`` for wait or a non-candidate)."""
        if action == 0:
            return -1
        driver, slot = divmod(int(action) - 1, self.visible_slots)
        hits = np.flatnonzero((self.pair_driver == driver) & (self.pair_slot == slot))
        return int(hits[0]) if hits.size else -1


class _DayFrame:
    """What stays fixed through a day: positions in km from the centre, id ranks."""

    def __init__(self, sim: DaySimulator) -> None:
        scenario = sim.scenario
        to_frame = LocalFrame(sim.frame_centre, scenario.coords).scaled
        self.pickup = to_frame(sim.pickup_xy).astype(np.float32)
        self.dropoff = to_frame(sim.dropoff_xy).astype(np.float32)
        self.driver_start = to_frame(sim.driver_start_xy).astype(np.float32)
        self.driver_rank = _id_ranks(sim.driver_ids)


def _id_ranks(ids: Sequence[str]) -> np.ndarray:
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


class _PlanCache:
    """Every driver's plan packed for the pairs' knock-on effects
    (:func:`~rldispatch.agents.pairwise.feature_kernels.plain_pair_rows`) and the count of
    late planned pickups, kept up to date as schedules change (the simulator replaces
    ``plan_start[d]`` then): the plans of the few drivers a decision changed are spliced into
    the packed arrays, and everything is packed again only when many changed (the clock
    moved)."""

    SPLICED_SHARE = 32
    """Changed drivers are spliced in one by one while they are at most one in this many (or
    one); beyond, every plan is packed again (cheaper then)."""

    def __init__(self, sim: DaySimulator) -> None:
        self.sim = sim
        self._starts: list[np.ndarray] = []
        self._late: np.ndarray = np.zeros(0, dtype=np.int64)  # late planned pickups per driver
        self._late_total = 0
        self._packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def refresh(self) -> None:
        sim = self.sim
        if self._packed is None:
            self._pack_all()
            return
        changed = list(
            itertools.compress(
                range(len(self._starts)), map(operator.is_not, sim.plan_start, self._starts)
            )
        )
        if not changed:
            return
        if len(changed) > max(1, len(self._starts) // self.SPLICED_SHARE):
            self._pack_all()
            return
        bookings, offsets, starts = self._packed
        offsets = offsets.copy()
        for driver in changed:
            first, end = int(offsets[driver]), int(offsets[driver + 1])
            plan = np.asarray(sim.plans[driver], dtype=np.int64)
            plan_start = sim.plan_start[driver]
            bookings = np.concatenate((bookings[:first], plan, bookings[end:]))
            starts = np.concatenate((starts[:first], plan_start, starts[end:]))
            offsets[driver + 1 :] += plan.size - (end - first)
            late = plan_start > sim.requested_min[plan] + LATE_AFTER_REQUESTED_MIN
            late_count = int(np.count_nonzero(late))
            self._late_total += late_count - int(self._late[driver])
            self._late[driver] = late_count
            self._starts[driver] = plan_start
        self._packed = (bookings, offsets, starts)

    def _pack_all(self) -> None:
        sim = self.sim
        plans = sim.plans
        sizes = np.fromiter(map(len, plans), dtype=np.int64, count=len(plans))
        offsets = np.zeros(len(plans) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        bookings = np.fromiter(
            itertools.chain.from_iterable(plans), dtype=np.int64, count=int(offsets[-1])
        )
        starts = np.concatenate([np.zeros(0), *sim.plan_start])
        late = starts > sim.requested_min[bookings] + LATE_AFTER_REQUESTED_MIN
        owner = np.repeat(np.arange(len(plans)), sizes)
        self._late = np.bincount(owner[late], minlength=len(plans)).astype(np.int64)
        self._late_total = int(np.count_nonzero(late))
        self._starts = list(sim.plan_start)
        self._packed = (bookings, offsets, starts)

    def late_total(self) -> int:
        return self._late_total

    def plan_sizes(self) -> np.ndarray:
        """Bookings in each driver's plan (as of the last :meth:`refresh`)."""
        return np.diff(self.packed()[1])

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every driver's plan one after another: ``(bookings, offsets, starts)`` (as of the
        last :meth:`refresh`)."""
        if self._packed is None:
            self.refresh()
        assert self._packed is not None
        return self._packed


def cheapest_candidates(
    cost: np.ndarray, feasible: np.ndarray, driver_rank: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each booking (column), its ``k`` feasible drivers of least cost, ties by driver
    id rank: ``(driver, slot, rank among the booking's candidates)``, by slot then rank."""
    driver, slot, rank, _, _, _ = candidate_kernel(cost, feasible, driver_rank, k)
    return driver, slot, rank


class FeatureBuilder:
    """Builds :class:`PairState` from a :class:`DispatchEnv`, for any fleet size.

    :param candidates_per_booking: drivers kept per visible booking (cheapest insertion
        first, ties by driver id).
    """

    def __init__(self, candidates_per_booking: int = 6) -> None:
        if candidates_per_booking < 1:
            raise ValueError("candidates_per_booking: must be at least 1")
        self.candidates_per_booking = int(candidates_per_booking)
        self._frame_scenario: object | None = None
        self._frame: _DayFrame | None = None
        self._plan_cache: _PlanCache | None = None

    def forget(self) -> None:
        """Drop what is kept of the last day (its frame and plans): a server's builder
        outlives the request whose day it built."""
        self._frame_scenario = None
        self._frame = None
        self._plan_cache = None

    def frame(self, sim: DaySimulator) -> _DayFrame:
        """What stays fixed through the day (kept while the scenario is the same)."""
        if self._frame_scenario is not sim.scenario:
            self._frame = _DayFrame(sim)
            self._frame_scenario = sim.scenario
        return self._frame

    def planned_late(self, sim: DaySimulator) -> int:
        """Planned pickups already late (``sim.planned_late_count()``, from the cache that
        recomputes only the drivers whose plan changed)."""
        return self._plans(sim).late_total()

    def _plans(self, sim: DaySimulator) -> _PlanCache:
        cache = self._plan_cache
        if cache is None or cache.sim is not sim:
            cache = self._plan_cache = _PlanCache(sim)
        cache.refresh()
        return cache

    @staticmethod
    def _stop_pair_rows(
        sim: DaySimulator,
        table: InsertionTable,
        visible: np.ndarray,
        candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
        cost: np.ndarray,
        best: np.ndarray,
        driver_best: np.ndarray,
        k: int,
    ) -> np.ndarray:
        """The pair rows of a state of plans of stops (shared rides, breaks, ride limits):
        what each insertion does to the plan after it is the simulator's."""
        cand_driver, cand_slot, cand_rank = candidates
        booking = visible[cand_slot]
        pickup = table.pickup_min[cand_driver, cand_slot]
        position = table.position[cand_driver, cand_slot].astype(np.int64)
        effects = sim.insertion_effects(
            cand_driver, booking, position, table.dropoff_position[cand_driver, cand_slot]
        )
        sizes = np.fromiter(map(len, sim.stops), dtype=np.int64, count=sim.n_drivers)
        return pair_rows(
            cand_driver,
            cand_slot,
            cand_rank,
            k,
            sim.now_min,
            cost[cand_driver, cand_slot],
            best,
            driver_best,
            table.added_km,
            pickup,
            sim.requested_min[booking],
            sim.latest_min[booking],
            position,
            sizes[cand_driver],
            effects[:, 0],
            effects[:, 1],
            effects[:, 2],
            effects[:, 4],
            effects[:, 5],
            effects[:, 6],
            effects[:, 7:10],
            effects[:, 10],
            LATE_AFTER_REQUESTED_MIN,
            TIE_TOLERANCE,
        )

    def build(self, env: DispatchEnv, time_of_day: float | None = None) -> PairState:
        """The features of the env's current state (no candidates when nothing is feasible).

        :param time_of_day: the share of the service day gone by, when the env's clock does
            not tell it (a live snapshot starts its clock at now); default ``now / horizon``.
        """
        sim = env.sim
        frame = self.frame(sim)
        now = sim.now_min
        n_drivers = sim.n_drivers
        visible = env.visible
        table = env.table
        slots = env.config.visible_slots

        # --- drivers, bookings, candidate pairs
        plans = self._plans(sim)
        plan_sizes = plans.plan_sizes()
        m = visible.size
        k = min(self.candidates_per_booking, n_drivers)
        if m and table is not None:
            feasible, table_cost = table.feasible[:n_drivers, :m], table.cost[:n_drivers, :m]
        else:
            feasible = np.zeros((n_drivers, m), dtype=bool)
            table_cost = np.full((n_drivers, m), np.inf)
        (
            drivers,
            on_shift_count,
            idle_count,
            bookings,
            cost,
            driver_best,
            cand_driver,
            cand_slot,
            cand_rank,
            best,
        ) = state_rows(
            now,
            k,
            sim.driver_free_min(),
            sim.driver_free_booking(),
            plan_sizes,
            sim.rides,
            sim.shift_start_min,
            sim.shift_end_min,
            sim.capacity,
            sim.idle_drivers(),
            frame.driver_rank,
            frame.pickup,
            frame.dropoff,
            frame.driver_start,
            visible,
            feasible,
            table_cost,
            sim.latest_min,
            sim.earliest_min,
            sim.requested_min,
            sim.priority,
            sim.load,
            sim.ride_km,
            REGRET_CAP_10KM,
        )
        n_pairs = cand_driver.size
        if n_pairs == 0:
            pairs = np.zeros((0, len(PAIR_FEATURES)), dtype=np.float32)
            pair_order = np.empty(0, dtype=np.int64)
        else:
            if sim.has_stops:
                candidates = (cand_driver, cand_slot, cand_rank)
                pairs = self._stop_pair_rows(
                    sim, table, visible, candidates, cost, best, driver_best, k
                )
            else:
                pairs = plain_pair_rows(
                    now,
                    k,
                    cand_driver,
                    cand_slot,
                    cand_rank,
                    cost,
                    best,
                    driver_best,
                    visible,
                    table.added_km,
                    table.pickup_min,
                    table.position,
                    plan_sizes,
                    sim.capacity_by_kind,
                    sim.load_by_kind,
                    sim.latest_min,
                    plans.packed(),
                    knock_on_booking_state(sim),
                    LATE_AFTER_REQUESTED_MIN,
                    sim.travel.kernel_args,
                    TIE_TOLERANCE,
                )
            # Ties go by booking id, then driver id: ranks among the visible bookings order
            # the pairs as ranks among all of the day's would.
            booking_ids = sim.booking_ids
            visible_rank = _id_ranks([booking_ids[b] for b in visible.tolist()])
            pair_order = visible_rank[cand_slot] * (n_drivers + 1) + frame.driver_rank[cand_driver]

        # --- global
        open_count = int(np.count_nonzero(sim.status == OPEN))
        planned_late = plans.late_total()
        scale = max(n_drivers, 1)
        global_row = np.array(
            [
                now / sim.horizon_min if time_of_day is None else time_of_day,
                n_drivers / 30.0,
                m / scale,
                (open_count - m) / scale,
                idle_count / scale,
                on_shift_count / scale,
                n_pairs / max(m * k, 1),
                plan_sizes.sum() / scale,
                planned_late / scale,
            ],
            dtype=np.float32,
        )
        return PairState(
            drivers=drivers,
            bookings=bookings,
            pairs=pairs,
            pair_driver=cand_driver.astype(np.int64),
            pair_slot=cand_slot.astype(np.int64),
            globals=global_row,
            pair_order=pair_order.astype(np.int64),
            visible_slots=slots,
        )
