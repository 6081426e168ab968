"""The A/B split: deterministic by booking id, share set by the ratio."""

from __future__ import annotations

import pytest

from rldispatch.service.decisions.ab import ToggleState, assign_arm, booking_hash_fraction

IDS = [f"booking-{index}" for index in range(4000)]


def test_same_booking_same_arm_every_time() -> None:
    assert [assign_arm(i, 0.3) for i in IDS] == [assign_arm(i, 0.3) for i in IDS]
    # A fixed value: the hash is SHA-256, not Python's salted hash().
    assert booking_hash_fraction("b1") == pytest.approx(0.491355, abs=1e-6)


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_share_of_the_rl_arm_follows_the_ratio(ratio: float) -> None:
    share = sum(assign_arm(i, ratio) == "rl" for i in IDS) / len(IDS)
    assert share == pytest.approx(ratio, abs=0.03)


def test_raising_the_ratio_only_moves_bookings_into_the_rl_arm() -> None:
    low = {i for i in IDS if assign_arm(i, 0.2) == "rl"}
    high = {i for i in IDS if assign_arm(i, 0.6) == "rl"}
    assert low < high


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_outside_zero_one_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="ab_ratio"):
        ToggleState(ab_ratio=ratio)
