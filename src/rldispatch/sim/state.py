"""A day's simulator set to a given moment: the state a dispatcher describes live.

:func:`restore_day` builds a :class:`DaySimulator` whose clock, fleet and open bookings are
given rather than simulated up to: each driver free (of the work it has set off for) at a
time and place, with its plan (bookings given but not yet set off for, in order), and the
bookings nobody has been given yet. From there the simulator computes what it computes at a
decision of a simulated day (schedules, slack, insertions, visible bookings), so a policy
sees the same state. The service builds its live state with it; ``tests/sim/test_state.py``
checks that restoring the state of a simulated day at its real decisions gives the same state.
:func:`restore_stop_day` does the same for a day of plans of stops (shared rides, breaks,
maximum ride times).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.sim.columns import DayColumns
from rldispatch.sim.simulator import ASSIGNED, OPEN, SERVED, DaySimulator
from rldispatch.sim.stop_kernels import DROPOFF, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator


def restore_day(
    scenario: Scenario,
    now_min: float,
    free_min: np.ndarray,
    plans: Sequence[Sequence[int]],
    rides: np.ndarray,
    frame_centre: np.ndarray | None = None,
    lookahead_min: float = 90.0,
    offered_bookings: int | None = None,
    columns: DayColumns | None = None,
) -> DaySimulator:
    """A simulator of ``scenario`` at minute ``now_min`` of its day.

    :param scenario: the day: drivers start where they will be free (``Driver.start``) and
        keep their shifts; bookings are every booking in a plan or still open (released).
    :param free_min: per driver, when it has finished the work it has set off for (at most
        its shift start counts as its shift start).
    :param plans: per driver, the booking indices of its plan, in order; every booking in no
        plan is open.
    :param rides: per driver, rides done so far today.
    :param frame_centre: the reference point of the positions models read (default: the
        centre of the scenario's points).
    :param offered_bookings: bookings ``[0, offered_bookings)`` are the only open ones that
        can be offered to a driver (the visible ones, listed first): the insertion cache
        holds columns for them alone (default: every booking).
    :param columns: the scenario's bookings and drivers as arrays, when they are at hand.
    """
    width = None
    if offered_bookings is not None:
        width = min(max(int(offered_bookings), 0), len(scenario.bookings))
    sim = DaySimulator(
        scenario,
        lookahead_min=lookahead_min,
        columns=columns,
        centre=frame_centre,
        insertion_width=width,
    )
    n_drivers = sim.n_drivers
    if len(plans) != n_drivers or len(free_min) != n_drivers or len(rides) != n_drivers:
        raise ValueError("restore_day: free_min, plans and rides need one entry per driver")
    sim.now_min = float(now_min)
    sim.status[:] = OPEN
    sim.plans = [list(plan) if isinstance(plan, range) else list(map(int, plan)) for plan in plans]
    sizes = list(map(len, sim.plans))
    planned = np.fromiter(itertools.chain.from_iterable(sim.plans), np.int64, sum(sizes))
    sim.status[planned] = ASSIGNED
    sim.assigned_driver[planned] = np.repeat(np.arange(n_drivers), sizes)
    if planned.size != int((sim.status == ASSIGNED).sum()):
        raise ValueError("restore_day: a booking is in more than one plan")
    sim._waiting = sim.n_bookings - planned.size
    sim.anchor_min[:] = np.maximum(np.asarray(free_min, dtype=np.float64), sim.shift_start_min)
    sim.rides[:] = np.asarray(rides, dtype=np.int64)
    sim._schedule_all()
    sim._visible_cache = None
    return sim


def restore_stop_day(
    scenario: Scenario,
    now_min: float,
    free_min: np.ndarray,
    stops: Sequence[Sequence[tuple[int, int]]],
    onboard: Sequence[Sequence[int]],
    picked_done_min: np.ndarray,
    rides: np.ndarray,
    frame_centre: np.ndarray | None = None,
    lookahead_min: float = 90.0,
    offered_bookings: int | None = None,
) -> StopDaySimulator:
    """A simulator of plans of stops of ``scenario`` at minute ``now_min`` of its day: what
    :func:`restore_day` is for a day of booking plans.

    :param free_min: per driver, when it has finished the stop it has set off for; it is then
        where ``Driver.start`` says.
    :param stops: per driver, its stops not set off for, in order: ``(PICKUP, booking)``,
        ``(DROPOFF, booking)`` or ``(BREAK, k)`` (the driver's ``k``-th break in the
        scenario); a booking with a pickup here is planned, one with a drop-off alone is on
        board.
    :param onboard: per driver, the bookings on board (each has its drop-off in ``stops``).
    :param picked_done_min: per booking, when its pickup ended (read for those on board).
    :param rides: per driver, rides done so far today.
    :param offered_bookings: as for :func:`restore_day`.
    """
    sim = StopDaySimulator(scenario, lookahead_min=lookahead_min)
    n_drivers = sim.n_drivers
    if not (len(stops) == len(onboard) == len(free_min) == len(rides) == n_drivers):
        raise ValueError(
            "restore_stop_day: free_min, stops, onboard and rides need one entry per driver"
        )
    if frame_centre is not None:
        sim.frame_centre = np.asarray(frame_centre, dtype=np.float64).reshape(2)
    sim.now_min = float(now_min)
    sim.status[:] = OPEN
    sim.picked_done_min[:] = np.asarray(picked_done_min, dtype=np.float64)
    taken = 0
    for driver in range(n_drivers):
        plan = [(int(kind), int(ref)) for kind, ref in stops[driver]]
        planned = [ref for kind, ref in plan if kind == PICKUP]
        aboard = [int(booking) for booking in onboard[driver]]
        dropped = {ref for kind, ref in plan if kind == DROPOFF}
        if dropped != set(planned) | set(aboard):
            raise ValueError(
                f"restore_stop_day: driver {driver}: every booking planned or on board needs "
                "one drop-off in its stops, and only they"
            )
        sim.status[planned] = ASSIGNED
        sim.status[aboard] = SERVED
        sim.assigned_driver[planned + aboard] = driver
        sim.stops[driver] = plan
        sim.onboard_bookings[driver] = aboard
        sim.onboard[driver] = sim.load_by_kind[aboard].sum(axis=0) if aboard else 0
        taken += len(planned) + len(aboard)
    if taken != int((sim.status != OPEN).sum()):
        raise ValueError("restore_stop_day: a booking is in more than one plan")
    sim._waiting = int((sim.status == OPEN).sum())
    sim.anchor_min[:] = np.maximum(np.asarray(free_min, dtype=np.float64), sim.shift_start_min)
    sim.rides[:] = np.asarray(rides, dtype=np.int64)
    if offered_bookings is not None and offered_bookings < sim.n_bookings:
        sim.size_insertion_cache(max(int(offered_bookings), 0))
    for driver in range(n_drivers):
        sim._schedule(driver)
    sim._visible_cache = None
    return sim
