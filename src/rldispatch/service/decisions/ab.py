"""The A/B split and the switch that turns the learned policy on.

A booking's arm depends only on its id and the ratio: the first 8 bytes of the SHA-256 of the
id, read as a number in ``[0, 1)``, below ``ab_ratio`` means the ``rl`` arm. The same booking
lands in the same arm on every call, on every server, after every restart; raising the ratio
only moves bookings from ``heuristic`` to ``rl``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Arm = Literal["rl", "heuristic"]
DEFAULT_AB_RATIO = 0.5


def booking_hash_fraction(booking_id: str) -> float:
    """A stable number in ``[0, 1)`` for a booking id."""
    digest = hashlib.sha256(booking_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_arm(booking_id: str, ab_ratio: float) -> Arm:
    """The A/B arm of a booking: ``rl`` for a share ``ab_ratio`` of booking ids."""
    return "rl" if booking_hash_fraction(booking_id) < ab_ratio else "heuristic"


@dataclass(frozen=True)
class ToggleState:
    """What an admin switches: RL on or off, the share of bookings in the RL arm, shadow mode.

    :param enabled: the learned policy may answer (in its A/B arm).
    :param ab_ratio: share of bookings (by id hash) in the ``rl`` arm, in ``[0, 1]``.
    :param shadow: compute the learned answer for every booking, log it, serve the heuristic's.
    :param champion_path: the model file every worker serves (None: the one it started with),
        and ``champion_version`` the version of its weights when it was checked.
    :param challenger_path: a second model answering a share of the ``rl`` arm (None: none),
        and ``challenger_version`` its weights' version.
    :param challenger_ratio: share of the ``rl`` arm's bookings (by id hash) the challenger
        answers, in ``[0, 1]``.
    :param version: the row's version number, raised by one at every change (compare-and-set).
    """

    enabled: bool = False
    ab_ratio: float = DEFAULT_AB_RATIO
    shadow: bool = False
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_by: str = "default"
    champion_path: str | None = None
    champion_version: str | None = None
    challenger_path: str | None = None
    challenger_version: str | None = None
    challenger_ratio: float = 0.0
    version: int = 0

    def __post_init__(self) -> None:
        for name in ("ab_ratio", "challenger_ratio"):
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be in [0, 1], got {value!r}")


def serves_challenger(booking_id: str, challenger_ratio: float) -> bool:
    """Whether the challenger model answers a booking of the ``rl`` arm: a hash of the id
    independent of the arm's (salted), below ``challenger_ratio``."""
    return booking_hash_fraction(f"challenger:{booking_id}") < challenger_ratio
