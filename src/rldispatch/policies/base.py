"""The one interface every dispatcher implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rldispatch.env import DispatchEnv


@runtime_checkable
class Policy(Protocol):
    """Chooses the next action of a :class:`DispatchEnv`.

    A policy reads the env's state (its simulator, visible slots and action mask) and returns
    a valid action: ``0`` to wait or ``1 + driver * slots + slot`` to assign.
    """

    name: str

    def act(self, env: DispatchEnv) -> int: ...


def assignment_action(env: DispatchEnv, driver: int, slot: int) -> int:
    """The action that gives the booking in ``slot`` to ``driver``."""
    return 1 + int(driver) * env.config.visible_slots + int(slot)
