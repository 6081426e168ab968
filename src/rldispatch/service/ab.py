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
    """

    enabled: bool = False
    ab_ratio: float = DEFAULT_AB_RATIO
    shadow: bool = False
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_by: str = "default"

    def __post_init__(self) -> None:
        if not math.isfinite(self.ab_ratio) or not 0.0 <= self.ab_ratio <= 1.0:
            raise ValueError(f"ab_ratio: must be in [0, 1], got {self.ab_ratio!r}")
