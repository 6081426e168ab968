"""What the guided re-optimiser's network reads: one row per open booking (its prize) and
one row per place a driver's plan may end (its value).

Every feature is relative to the day itself (minutes from now, km from the day's centre,
counts per driver), so a model trained on one city reads another the same way. Both
tables end with the same state features (:data:`STATE_FEATURES`).

Booking rows (the prize of assigning the booking now rather than leaving it open):

| name | meaning |
| --- | --- |
| ``opens_in_h`` | hours until its pickup window opens (clipped to [-1, 4]) |
| ``closes_in_h`` | hours until its window closes (clipped to [-1, 4]) |
| ``requested_in_h`` | hours until its requested pickup (clipped to [-1, 4]) |
| ``urgent`` | 1 for an urgent booking |
| ``ride_h`` | its ride, in hours |
| ``notice_h`` | hours between its release and its requested pickup (clipped to [0, 4]) |
| ``nearest_km`` | km from the nearest driver's free position to its pickup, / 10 |
| ``slack_h`` | best over drivers of (window close − arrival when free), hours, [-2, 4] |
| ``reachable`` | share of drivers that reach its pickup before its window closes |
| ``rivals`` | other open bookings within 3 km and 60 minutes of it, per driver |

End rows (a plan ending with a booking's drop-off, or an empty plan at the driver's start):

| name | meaning |
| --- | --- |
| ``free_in_h`` | hours from now until the driver is free there (estimated), [0, 6] |
| ``free_at_day`` | when that is, as a share of the day |
| ``centre_km`` | km from the day's centre, / 10 |
| ``demand_near`` | open bookings within 3 km whose window opens in the hour after, per driver |
| ``hotspot`` | share of the day's known bookings picked up within 3 km |
| ``empty_plan`` | 1 for an empty plan (the driver's start) |

State features (both tables):

| name | meaning |
| --- | --- |
| ``day_share`` | the clock, as a share of the day |
| ``open_per_driver`` | open bookings per driver on duty |
| ``load`` | work known and not done (rides of open and committed bookings), / driver time left |
| ``urgent_rate`` | bookings released after the start so far, per driver and hour |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rldispatch.policies.ride_model import RideProblem
from rldispatch.sim.simulator import ASSIGNED, OPEN, UNRELEASED, DaySimulator

BOOKING_FEATURES = (
    "opens_in_h",
    "closes_in_h",
    "requested_in_h",
    "urgent",
    "ride_h",
    "notice_h",
    "nearest_km",
    "slack_h",
    "reachable",
    "rivals",
)
END_FEATURES = ("free_in_h", "free_at_day", "centre_km", "demand_near", "hotspot", "empty_plan")
STATE_FEATURES = ("day_share", "open_per_driver", "load", "urgent_rate")
GATE_FEATURES = (
    "pickup_in_h",
    "closes_in_h",
    "pickup_slack_h",
    "urgent",
    "ride_h",
    "notice_h",
    "driver_busy_h",
    "plan_rank",
)
"""The commit gate's rows (:mod:`rldispatch.agents.guided_reopt.gate` explains them)."""
FEATURE_VERSION = 2
NEAR_KM = 3.0
"""What counts as near (rivals, demand, hotspots)."""
AHEAD_MIN = 60.0


@dataclass(frozen=True)
class StateFeatures:
    """The network's inputs at one re-plan.

    :param free: the free (not committed) bookings of the problem, in its order.
    :param booking: ``(len(free), n_booking_features)`` rows.
    :param end_bookings: the problem's bookings, each a place a plan may end.
    :param end: ``(len(end_bookings) + n_drivers, n_end_features)`` rows: the bookings', then
        each driver's empty plan.
    """

    free: np.ndarray
    booking: np.ndarray
    end_bookings: np.ndarray
    end: np.ndarray


def _distance_km(sim: DaySimulator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return sim.travel.distance_km(a[:, None, :], b[None, :, :])


def state_row(sim: DaySimulator) -> np.ndarray:
    """The state features (:data:`STATE_FEATURES`)."""
    now = sim.now_min
    on_duty = sim.shift_end_min > now
    drivers = max(int(on_duty.sum()), 1)
    open_ = sim.status == OPEN
    todo = open_ | (sim.status == ASSIGNED)
    work_min = float(sim.pickup_to_free_min[todo].sum())
    left_min = float(np.maximum(sim.shift_end_min - np.maximum(now, sim.anchor_min), 0.0).sum())
    released_late = np.sum((sim.status != UNRELEASED) & (sim.release_min > 0.0))
    hours = max(now, 60.0) / 60.0
    return np.array(
        [
            now / max(sim.horizon_min, 1.0),
            open_.sum() / drivers,
            min(work_min / max(left_min, 1.0), 4.0),
            released_late / (drivers * hours),
        ],
        dtype=np.float32,
    )


def build_features(sim: DaySimulator, problem: RideProblem) -> StateFeatures:
    """The network's inputs for ``problem`` (a re-plan of ``sim``'s state)."""
    now = sim.now_min
    fixed = {b for plan in problem.fixed for b in plan}
    bookings = np.asarray(problem.bookings, dtype=np.int64)
    free = np.asarray([b for b in bookings.tolist() if b not in fixed], dtype=np.int64)
    state = state_row(sim)
    n_drivers = sim.n_drivers
    on_duty = max(int(np.sum(sim.shift_end_min > now)), 1)

    # Where and when each driver is free of what it has been given.
    free_min = np.maximum(sim.driver_free_min(), sim.shift_start_min)
    last = sim.driver_free_booking()
    free_vec = np.where((last >= 0)[:, None], sim.dropoff_vec[np.maximum(last, 0)], sim.anchor_vec)

    booking_rows = np.zeros((free.size, len(BOOKING_FEATURES)), dtype=np.float32)
    if free.size:
        km = _distance_km(sim, free_vec, sim.pickup_vec[free])  # (drivers, free)
        pace_km = (
            sim.travel.pace_km(free_vec[:, None, :], sim.pickup_vec[free][None, :, :])
            if sim.travel.on_roads
            else km
        )
        arrive = np.maximum(free_min[:, None], now) + pace_km * sim.minutes_per_km[free][None, :]
        slack = sim.latest_min[free][None, :] - arrive
        slack = np.where((sim.shift_end_min > now)[:, None], slack, -np.inf)
        open_idx = np.flatnonzero(sim.status == OPEN)
        near = _distance_km(sim, sim.pickup_vec[free], sim.pickup_vec[open_idx]) <= NEAR_KM
        close_in_time = (
            np.abs(sim.requested_min[free][:, None] - sim.requested_min[open_idx][None, :])
            <= AHEAD_MIN
        )
        rivals = np.maximum((near & close_in_time).sum(axis=1) - 1, 0)
        booking_rows[:, 0] = np.clip((sim.earliest_min[free] - now) / 60.0, -1.0, 4.0)
        booking_rows[:, 1] = np.clip((sim.latest_min[free] - now) / 60.0, -1.0, 4.0)
        booking_rows[:, 2] = np.clip((sim.requested_min[free] - now) / 60.0, -1.0, 4.0)
        booking_rows[:, 3] = sim.priority[free] > 0
        booking_rows[:, 4] = sim.ride_min[free] / 60.0
        booking_rows[:, 5] = np.clip((sim.requested_min[free] - sim.release_min[free]) / 60, 0, 4)
        booking_rows[:, 6] = km.min(axis=0) / 10.0
        booking_rows[:, 7] = np.clip(slack.max(axis=0) / 60.0, -2.0, 4.0)
        booking_rows[:, 8] = (slack >= 0).sum(axis=0) / on_duty
        booking_rows[:, 9] = rivals / on_duty
    booking_table = np.hstack([booking_rows, np.tile(state, (free.size, 1))])

    # Ends: each booking's drop-off at its estimated free time, each driver's start.
    pickup_est = np.maximum(
        sim.earliest_min[bookings],
        np.minimum(sim.requested_min[bookings], sim.latest_min[bookings]),
    )
    end_min = np.concatenate(
        [np.maximum(pickup_est, now) + sim.pickup_to_free_min[bookings], problem.start_min]
    )
    end_vec = np.vstack([sim.dropoff_vec[bookings], problem.start_vec])
    centre_vec = sim.travel.embed(np.asarray([sim.frame_centre], dtype=np.float64))
    known = np.flatnonzero(sim.status != UNRELEASED)
    open_idx = np.flatnonzero(sim.status == OPEN)
    near_open = _distance_km(sim, end_vec, sim.pickup_vec[open_idx]) <= NEAR_KM
    opens = sim.earliest_min[open_idx][None, :]
    soon = (opens >= end_min[:, None]) & (opens <= end_min[:, None] + AHEAD_MIN)
    hotspot = (_distance_km(sim, end_vec, sim.pickup_vec[known]) <= NEAR_KM).sum(axis=1)
    end_rows = np.zeros((end_min.size, len(END_FEATURES)), dtype=np.float32)
    end_rows[:, 0] = np.clip((end_min - now) / 60.0, 0.0, 6.0)
    end_rows[:, 1] = end_min / max(sim.horizon_min, 1.0)
    end_rows[:, 2] = _distance_km(sim, end_vec, centre_vec)[:, 0] / 10.0
    end_rows[:, 3] = (near_open & soon).sum(axis=1) / on_duty
    end_rows[:, 4] = hotspot / max(known.size, 1)
    end_rows[bookings.size :, 5] = 1.0
    end_table = np.hstack([end_rows, np.tile(state, (end_min.size, 1))])
    del n_drivers
    return StateFeatures(free, booking_table, bookings, end_table)
