"""Potential-based reward shaping: charge lateness and cancellations when they are caused.

The env pays ``-late_pickup_penalty`` when a driver sets off for a pickup that will be late,
and ``-cancellation_penalty`` when a booking's window closes unassigned: often dozens of
decisions after the assignment that made it late, or that took the last driver who could
still reach a booking. The agent learns from ``r + gamma * phi(s') - phi(s)`` with

    phi(s) = -late_pickup_penalty * (planned pickups that are late in s)          (lateness)
             -cancellation_penalty * (visible bookings no driver can serve in s)  (cancellations)

so such an assignment pays at once, and the penalty the env pays later is refunded as the
booking leaves the plan or is cancelled. Shaping of this form leaves the optimal policy
unchanged (Ng, Harada and Russell, 1999); every reported reward stays the env's own.
"""

from __future__ import annotations

import numpy as np

from rldispatch.env import DispatchEnv


def unservable_bookings(env: DispatchEnv) -> int:
    """Visible bookings that no driver can serve any more (their action columns are masked)."""
    config = env.config
    grid = env.action_masks()[1:].reshape(config.max_drivers, config.visible_slots)
    visible = env.visible.size
    return int(visible - np.count_nonzero(grid[:, :visible].any(axis=0)))


def shaping_potential(
    env: DispatchEnv, lateness: bool, cancellations: bool, terminated: bool = False
) -> float:
    """``phi(s)`` of the chosen terms (0 at the end of the day)."""
    if terminated:
        return 0.0
    weights = env.config.reward
    potential = 0.0
    if lateness:
        potential -= weights.late_pickup_penalty * env.sim.planned_late_count()
    if cancellations:
        potential -= weights.cancellation_penalty * unservable_bookings(env)
    return potential
