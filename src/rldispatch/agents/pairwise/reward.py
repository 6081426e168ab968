"""The reward the pairwise agent learns from, and the part of it known at each decision.

With shaping weight ``w`` the agent learns from

    r + w * (c * (assigned + newly cancelled) - p * (change in planned late pickups))

``c`` the cancellation penalty, ``p`` the late-pickup penalty. With ``w = 1`` a booking's fate
is paid when it is decided: ``bonus + c`` at its assignment, nothing more at its cancellation;
a late pickup when a plan first makes it late (the booking itself or one pushed back behind
it), not when the driver sets off, possibly hundreds of decisions later. A day's total then
differs from the env's by ``c * bookings``, a constant. Every reported figure is the env's
own reward.
"""

from __future__ import annotations

from collections.abc import Callable

from rldispatch.agents.pairwise.network import KnownReward
from rldispatch.env import DispatchEnv
from rldispatch.rewards import RewardConfig
from rldispatch.sim import DaySimulator
from rldispatch.sim.simulator import CANCELLED


class TrainingReward:
    """The shaped, scaled reward of each step of a day (call :meth:`start` at its start).

    :param planned_late: counts the planned pickups already late (default
        ``sim.planned_late_count()``; a learner passes its feature builder's cached count).
    """

    def __init__(
        self,
        weights: RewardConfig,
        shaping_weight: float,
        scale: float,
        planned_late: Callable[[DaySimulator], int] | None = None,
    ) -> None:
        self.weights = weights
        self.count_planned_late = planned_late or DaySimulator.planned_late_count
        self.shaping_weight = float(shaping_weight)
        self.scale = float(scale)
        self.planned_late = 0
        self.cancelled = 0

    def _measure(self, env: DispatchEnv) -> tuple[int, int]:
        sim = env.sim
        return self.count_planned_late(sim), int((sim.status == CANCELLED).sum())

    def start(self, env: DispatchEnv) -> None:
        self.planned_late, self.cancelled = self._measure(env)

    def __call__(self, env: DispatchEnv, assigned: bool, reward: float) -> float:
        if self.shaping_weight == 0.0:
            return reward * self.scale
        planned_late, cancelled = self._measure(env)
        weights = self.weights
        shaping = weights.cancellation_penalty * (assigned + cancelled - self.cancelled)
        shaping -= weights.late_pickup_penalty * (planned_late - self.planned_late)
        self.planned_late, self.cancelled = planned_late, cancelled
        return (reward + self.shaping_weight * shaping) * self.scale

    def known_reward(self, weight: float = 1.0) -> KnownReward | None:
        """The part of this reward an action's features determine when it is chosen, times
        ``weight`` (None for weight 0: the network learns everything)."""
        if weight == 0.0:
            return None
        weights, scale, shaping = self.weights, self.scale * weight, self.shaping_weight
        return KnownReward(
            assignment=(weights.assignment_bonus + shaping * weights.cancellation_penalty) * scale,
            per_10km=-weights.km_cost * 10.0 * scale,
            per_late=-weights.late_pickup_penalty * shaping * scale,
            wait=-weights.idle_wait_penalty * scale,
        )
