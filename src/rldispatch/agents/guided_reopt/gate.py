"""The commit gate of ``guided-reopt``: which of the bookings a re-plan gives to a driver are
committed now, and which stay open for a later re-plan.

``reopt`` commits every visible booking its plan gives to a driver (earliest planned pickup
first) and a committed booking is locked to that driver. The gate scores each such booking
(one row per booking and its planned driver, :data:`GATE_FEATURES` then the state features)
and the policy commits it only when the score is at least 0, or when its planned pickup is
at most ``floor_min`` minutes ahead (so a booking the driver must set off for now is never
held back). A zero score commits: with a zero gate the policy is ``reopt``.

| name | meaning |
| --- | --- |
| ``pickup_in_h`` | hours from now to the planned pickup (clipped to [-1, 4]) |
| ``closes_in_h`` | hours from now until its window closes (clipped to [-1, 4]) |
| ``pickup_slack_h`` | window close minus planned pickup, hours ([-1, 4]) |
| ``urgent`` | 1 for an urgent booking |
| ``ride_h`` | its ride, in hours |
| ``notice_h`` | hours between its release and its requested pickup ([0, 4]) |
| ``driver_busy_h`` | hours until the planned driver is free of its committed plan ([0, 6]) |
| ``plan_rank`` | free bookings planned before it on the driver's route, / 5 (clipped to 2) |

Labels come from the full-information plan of a visited state
(:class:`rldispatch.agents.guided_reopt.labels.StateLabel`): a booking that plan serves *now*
with the same driver should be committed (1); one it serves only after a booking not yet
known (*later*), gives to another driver, or never serves should stay open (0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rldispatch.agents.guided_reopt.features import GATE_FEATURES, state_row
from rldispatch.agents.guided_reopt.labels import StateLabel
from rldispatch.sim.simulator import OPEN, DaySimulator

DEFAULT_FLOOR_MIN = 15.0
"""A booking whose planned pickup is at most this many minutes ahead is committed whatever
the gate says."""


def plan_rank(sim: DaySimulator, routes: Sequence[Sequence[int]]) -> dict[int, int]:
    """booking -> how many open bookings come before it on its planned driver's route."""
    rank = {}
    for route in routes:
        seen = 0
        for booking in route:
            if sim.status[booking] == OPEN:
                rank[int(booking)] = seen
                seen += 1
    return rank


def gate_rows(
    sim: DaySimulator,
    bookings: Sequence[int],
    driver_of: Mapping[int, int],
    pickup_of: Mapping[int, float],
    rank_of: Mapping[int, int],
) -> np.ndarray:
    """One row per booking of ``bookings`` (each planned to ``driver_of[b]`` at
    ``pickup_of[b]``): :data:`GATE_FEATURES` then the state features."""
    now = sim.now_min
    index = np.asarray(list(bookings), dtype=np.int64)
    rows = np.zeros((index.size, len(GATE_FEATURES)), dtype=np.float32)
    if index.size:
        drivers = np.asarray([driver_of[b] for b in index.tolist()], dtype=np.int64)
        pickup = np.asarray([pickup_of[b] for b in index.tolist()], dtype=np.float64)
        free_min = sim.driver_free_min()[drivers]
        rows[:, 0] = np.clip((pickup - now) / 60.0, -1.0, 4.0)
        rows[:, 1] = np.clip((sim.latest_min[index] - now) / 60.0, -1.0, 4.0)
        rows[:, 2] = np.clip((sim.latest_min[index] - pickup) / 60.0, -1.0, 4.0)
        rows[:, 3] = sim.priority[index] > 0
        rows[:, 4] = sim.ride_min[index] / 60.0
        rows[:, 5] = np.clip((sim.requested_min[index] - sim.release_min[index]) / 60.0, 0, 4)
        rows[:, 6] = np.clip((free_min - now) / 60.0, 0.0, 6.0)
        rows[:, 7] = np.minimum([rank_of.get(b, 0) / 5.0 for b in index.tolist()], 2.0)
    state = np.tile(state_row(sim), (index.size, 1))
    return np.hstack([rows, state]).astype(np.float32)


def gate_targets(
    bookings: Sequence[int], driver_of: Mapping[int, int], label: StateLabel
) -> np.ndarray:
    """1 where the full-information plan serves the booking now with the planned driver,
    else 0 (see the module docstring)."""
    now = set(label.now)
    return np.asarray(
        [
            float(b in now and label.driver_of.get(b) == driver_of[b])
            for b in (int(b) for b in bookings)
        ],
        dtype=np.float32,
    )


LINEAR_GATE_FEATURES = (
    "bias",
    "left_out_per_driver",
    "load",
    "pickup_in_h",
    "slack_h",
    "urgent",
    "driver_busy_h",
    "plan_rank",
    "left_out_x_pickup",
    "load_x_pickup",
)
"""The linear gate's row per planned booking (trained by evolution strategies,
:mod:`.es_learning`): a constant 1; the open bookings the last re-plan left out of its plan
per driver on duty (the overload signal, relative to the fleet; [0, 2]); work known and not
done over driver time left ([0, 2]); hours to the planned pickup ([0, 4]); window close
minus planned pickup, hours ([-1, 2]); urgent or not; hours until the planned driver is free
of its committed plan, / 2 ([0, 2]); free bookings before it on its route, / 5 ([0, 2]);
and the products of the first two signals with the hours to the pickup."""


def linear_gate_rows(
    sim: DaySimulator,
    bookings: Sequence[int],
    driver_of: Mapping[int, int],
    pickup_of: Mapping[int, float],
    rank_of: Mapping[int, int],
    left_out: int,
) -> np.ndarray:
    """One :data:`LINEAR_GATE_FEATURES` row per booking of ``bookings``; ``left_out`` is the
    number of open bookings the last re-plan left out of its plan."""
    now = sim.now_min
    index = np.asarray(list(bookings), dtype=np.int64)
    rows = np.zeros((index.size, len(LINEAR_GATE_FEATURES)), dtype=np.float64)
    if not index.size:
        return rows
    on_duty = max(int(np.sum(sim.shift_end_min > now)), 1)
    left_out_pd = min(left_out / on_duty, 2.0)
    load = min(float(state_row(sim)[2]), 2.0)
    drivers = np.asarray([driver_of[b] for b in index.tolist()], dtype=np.int64)
    pickup = np.asarray([pickup_of[b] for b in index.tolist()], dtype=np.float64)
    ahead_h = np.clip((pickup - now) / 60.0, 0.0, 4.0)
    rows[:, 0] = 1.0
    rows[:, 1] = left_out_pd
    rows[:, 2] = load
    rows[:, 3] = ahead_h
    rows[:, 4] = np.clip((sim.latest_min[index] - pickup) / 60.0, -1.0, 2.0)
    rows[:, 5] = sim.priority[index] > 0
    rows[:, 6] = np.clip((sim.driver_free_min()[drivers] - now) / 120.0, 0.0, 2.0)
    rows[:, 7] = np.minimum([rank_of.get(b, 0) / 5.0 for b in index.tolist()], 2.0)
    rows[:, 8] = left_out_pd * ahead_h
    rows[:, 9] = load * ahead_h
    return rows


def linear_gate_scores(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Commit score ``1 + rows @ weights`` per row (commit when >= 0): zero weights commit
    every planned booking."""
    return 1.0 + rows @ np.asarray(weights, dtype=np.float64)
