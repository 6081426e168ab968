"""A day's simulator set to a given moment: the state a dispatcher describes live.

:func:`restore_day` builds a :class:`DaySimulator` whose clock, fleet and open bookings are
given rather than simulated up to: each driver free (of the work it has set off for) at a
time and place, with its plan (bookings given but not yet set off for, in order), and the
bookings nobody has been given yet. From there the simulator computes what it computes at a
decision of a simulated day (schedules, slack, insertions, visible bookings), so a policy
sees the same state. The service builds its live state with it; ``tests/sim/test_state.py``
checks that restoring the state of a simulated day at its real decisions gives the same state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.sim.columns import DayColumns
from rldispatch.sim.simulator import ASSIGNED, OPEN, DaySimulator


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
    sim.plans = [list(map(int, plan)) for plan in plans]
    sizes = [len(plan) for plan in sim.plans]
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
