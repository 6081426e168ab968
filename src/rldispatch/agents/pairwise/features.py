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

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.env import DispatchEnv
from rldispatch.sim import DaySimulator
from rldispatch.sim.frame import LocalFrame
from rldispatch.sim.knock_on import plan_knock_on
from rldispatch.sim.simulator import OPEN

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
    """Every driver's plan packed for :func:`plan_knock_on` and the count of late planned
    pickups, made again only after a schedule changed (the simulator replaces
    ``plan_start[d]`` then): one pass over the plans, whatever the number of drivers."""

    def __init__(self, sim: DaySimulator) -> None:
        self.sim = sim
        self._starts: list[np.ndarray] = []
        self._late_total = 0
        self._packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def refresh(self) -> None:
        sim = self.sim
        if self._packed is not None and not any(map(operator.is_not, sim.plan_start, self._starts)):
            return
        plans = sim.plans
        sizes = np.fromiter(map(len, plans), dtype=np.int64, count=len(plans))
        offsets = np.zeros(len(plans) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        bookings = np.fromiter(
            itertools.chain.from_iterable(plans), dtype=np.int64, count=int(offsets[-1])
        )
        starts = np.concatenate([np.zeros(0), *sim.plan_start])
        late = starts > sim.requested_min[bookings] + LATE_AFTER_REQUESTED_MIN
        self._late_total = int(np.count_nonzero(late))
        self._starts = list(sim.plan_start)
        self._packed = (bookings, offsets, starts)

    def late_total(self) -> int:
        return self._late_total

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
    n_drivers, m = cost.shape
    if m == 0 or n_drivers == 0 or k == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if n_drivers > k:
        kth = np.partition(cost, k - 1, axis=0)[k - 1]
        chosen = feasible & (cost <= kth[None, :])
    else:
        chosen = feasible
    rows, cols = np.nonzero(chosen)
    order = np.lexsort((driver_rank[rows], cost[rows, cols], cols))
    rows, cols = rows[order], cols[order]
    rank = np.arange(rows.size) - np.searchsorted(cols, cols, side="left")
    keep = rank < k
    return rows[keep], cols[keep], rank[keep]


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

        # --- drivers
        plan_sizes = np.fromiter(map(len, sim.plans), dtype=np.int64, count=n_drivers)
        free_min = sim.driver_free_min()
        free_booking = sim.driver_free_booking()
        free_xy = np.where(
            (free_booking >= 0)[:, None],
            frame.dropoff[np.maximum(free_booking, 0)] if sim.n_bookings else 0.0,
            frame.driver_start,
        )
        rides = sim.rides.astype(np.float64)
        on_shift = (sim.shift_start_min <= now) & (sim.shift_end_min > now)
        idle = sim.idle_drivers()
        drivers = np.empty((n_drivers, len(DRIVER_FEATURES)), dtype=np.float32)
        drivers[:, 0] = (free_min - now) / 60.0
        drivers[:, 1] = plan_sizes / 4.0
        drivers[:, 2] = rides / 10.0
        drivers[:, 3] = (rides - rides.sum() / n_drivers) / 10.0 if n_drivers else 0.0
        drivers[:, 4] = np.maximum(sim.shift_end_min - now, 0.0) / 60.0
        drivers[:, 5] = on_shift
        drivers[:, 6] = np.maximum(sim.shift_start_min - now, 0.0) / 60.0
        drivers[:, 7] = sim.capacity - 1
        drivers[:, 8] = idle
        drivers[:, 9:11] = free_xy

        # --- candidates
        m = visible.size
        if m and table is not None:
            feasible = table.feasible[:n_drivers, :m]
            cost = np.where(feasible, table.cost[:n_drivers, :m], np.inf)
        else:
            feasible = np.zeros((n_drivers, m), dtype=bool)
            cost = np.full((n_drivers, m), np.inf)
        k = min(self.candidates_per_booking, n_drivers)
        cand_driver, cand_slot, cand_rank = cheapest_candidates(
            cost, feasible, frame.driver_rank, k
        )
        n_pairs = cand_driver.size

        # --- bookings
        n_feasible = feasible.sum(axis=0)
        if m and n_drivers > 1:
            best, second = np.partition(cost, 1, axis=0)[:2]
        else:
            best = cost[0] if m and n_drivers else np.full(m, np.inf)
            second = np.full(m, np.inf)
        best_finite = np.where(np.isfinite(best), best, 0.0)
        regret = np.where(
            np.isfinite(second) & np.isfinite(best),
            np.minimum((second - best_finite) / 10.0, REGRET_CAP_10KM),
            REGRET_CAP_10KM,
        )
        bookings = np.empty((m, len(BOOKING_FEATURES)), dtype=np.float32)
        bookings[:, 0] = (sim.latest_min[visible] - now) / 60.0
        bookings[:, 1] = (sim.earliest_min[visible] - now) / 60.0
        bookings[:, 2] = (sim.requested_min[visible] - now) / 60.0
        bookings[:, 3] = sim.priority[visible]
        bookings[:, 4] = sim.load[visible] - 1
        bookings[:, 5] = sim.ride_km[visible] / 10.0
        bookings[:, 6] = n_feasible / max(n_drivers, 1)
        bookings[:, 7] = n_feasible / 10.0
        bookings[:, 8] = best_finite / 10.0
        bookings[:, 9] = regret
        bookings[:, 10:12] = frame.pickup[visible]
        bookings[:, 12:14] = frame.dropoff[visible]

        # --- pairs
        plans = self._plans(sim)
        pairs = np.zeros((n_pairs, len(PAIR_FEATURES)), dtype=np.float32)
        if n_pairs:
            booking = visible[cand_slot]
            pair_cost = cost[cand_driver, cand_slot]
            pickup = table.pickup_min[cand_driver, cand_slot]
            position = table.position[cand_driver, cand_slot].astype(np.int64)
            requested = sim.requested_min[booking]
            late_min = np.maximum(pickup - requested - LATE_AFTER_REQUESTED_MIN, 0.0)
            driver_best = cost.min(axis=1)
            if sim.has_stops:
                effects = sim.insertion_effects(
                    cand_driver, booking, position, table.dropoff_position[cand_driver, cand_slot]
                )
                made_late, next_delay, total_delay = effects[:, 0], effects[:, 1], effects[:, 2]
                onboard_delay, dropoff_delay = effects[:, 4], effects[:, 5]
                ride_ratio, places_left, shared = effects[:, 6], effects[:, 7:10], effects[:, 10]
                sizes = np.fromiter(map(len, sim.stops), dtype=np.int64, count=n_drivers)
                sizes = sizes[cand_driver]
            else:
                made_late, next_delay, total_delay, _ = plan_knock_on(
                    sim, cand_driver, booking, pickup, position, packed=plans.packed()
                )
                # One booking on board at a time: its drop-off follows its pickup, and each
                # planned drop-off moves with its pickup.
                onboard_delay, dropoff_delay = np.zeros(n_pairs), total_delay
                ride_ratio, shared = np.ones(n_pairs), np.zeros(n_pairs)
                places_left = sim.capacity_by_kind[cand_driver] - sim.load_by_kind[booking]
                sizes = plan_sizes[cand_driver]
            pairs[:, 0] = pair_cost / 10.0
            pairs[:, 1] = (pair_cost - best[cand_slot]) / 10.0
            pairs[:, 2] = (pair_cost - driver_best[cand_driver]) / 10.0
            pairs[:, 3] = table.added_km[cand_driver, cand_slot] / 10.0
            pairs[:, 4] = (pickup - now) / 60.0
            pairs[:, 5] = (pickup - requested) / 10.0
            pairs[:, 6] = late_min > 0.0
            pairs[:, 7] = late_min / 10.0
            pairs[:, 8] = (sim.latest_min[booking] - pickup) / 10.0
            pairs[:, 9] = position / np.maximum(sizes, 1)
            pairs[:, 10] = position >= sizes
            pairs[:, 11] = made_late
            pairs[:, 12] = next_delay / 10.0
            pairs[:, 13] = total_delay / 10.0
            pairs[:, 14] = pair_cost <= best[cand_slot] + TIE_TOLERANCE
            pairs[:, 15] = cand_rank / max(k, 1)
            pairs[:, 16] = onboard_delay / 10.0
            pairs[:, 17] = dropoff_delay / 10.0
            pairs[:, 18] = ride_ratio
            pairs[:, 19] = places_left[:, 0] / 4.0
            pairs[:, 20:22] = places_left[:, 1:3]
            pairs[:, 22] = shared
            # Ties go by booking id, then driver id: ranks among the visible bookings order
            # the pairs as ranks among all of the day's would.
            booking_ids = sim.booking_ids
            visible_rank = _id_ranks([booking_ids[b] for b in visible.tolist()])
            pair_order = visible_rank[cand_slot] * (n_drivers + 1) + frame.driver_rank[cand_driver]
        else:
            pair_order = np.empty(0, dtype=np.int64)

        # --- global
        open_count = int((sim.status == OPEN).sum())
        planned_late = plans.late_total()
        scale = max(n_drivers, 1)
        global_row = np.array(
            [
                now / sim.horizon_min if time_of_day is None else time_of_day,
                n_drivers / 30.0,
                m / scale,
                (open_count - m) / scale,
                idle.sum() / scale,
                on_shift.sum() / scale,
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
