"""Playing a policy on a live env without moving the clock: one dispatch round, as
``evaluate`` plays the steps between two moves of the clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rldispatch.service.decisions.answers import RoundAssignment, round_assignment
from rldispatch.service.decisions.request_budget import RequestBudget
from rldispatch.service.decisions.snapshot import LiveEnv
from rldispatch.sim.simulator import OPEN

RoundEnd = Literal["wait", "no_feasible_assignment", "all_assigned", "budget"]


@dataclass(frozen=True)
class Round:
    """A round played: why the model had none (None: it played), the assignments made in
    order, the bookings left open, and why it stopped."""

    reason: str | None
    assignments: tuple[RoundAssignment, ...] = ()
    waiting: tuple[str, ...] = ()
    ended: RoundEnd = "wait"


class ModelFailed(Exception):
    """The model raised or answered values that cannot be used; ``reason`` says which."""

    def __init__(self, reason: str, error: Exception | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def play_round(live: LiveEnv, act: Any, budget: RequestBudget | None = None) -> Round:
    """Let ``act`` assign until it waits, nothing more can be assigned or nothing is open,
    without moving the clock: ``evaluate``'s steps between two clock moves. ``budget`` is
    asked before each decision: once spent the round ends (``budget``) with what it made."""
    env = live.env
    made: list[RoundAssignment] = []
    ended: RoundEnd = "no_feasible_assignment"
    while True:
        if env.sim.done:
            ended = "all_assigned"
            break
        if budget is not None and budget.spent():
            ended = "budget"
            break
        mask = env.action_masks()
        if not mask[1:].any():
            break
        action = int(act(env))
        if action == 0:
            ended = "wait"
            break
        if not (0 < action < mask.size and mask[action]):
            raise ModelFailed("invalid_action")
        made.append(round_assignment(live, env.assign(action)))
    ids = live.booking_ids
    waiting = tuple(map(ids.__getitem__, np.flatnonzero(env.sim.status == OPEN).tolist()))
    return Round(None, tuple(made), waiting, ended)
