"""``reopt``'s commit horizon: planned bookings held back until their pickup is near."""

from __future__ import annotations

import pytest

from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

DAY = geneva_day(5, 3)
CONFIG = EnvConfig(max_drivers=3)


def test_a_hold_horizon_holds_back_what_is_planned_for_later() -> None:
    held_back = evaluate_policy(ReoptPolicy(commit_within_min=20.0), [DAY], CONFIG)[0]
    reopt = evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0]
    assert held_back.routes != reopt.routes
    with pytest.raises(ValueError, match="commit_within_min"):
        ReoptPolicy(commit_within_min=-1.0)


def test_holding_only_when_overloaded_is_reopt_on_a_light_day_only() -> None:
    light = geneva_day(5, 3, bookings_per_driver=(4.0, 5.0))
    heavy = geneva_day(6, 3, bookings_per_driver=(19.0, 21.0))
    rule = ReoptPolicy(commit_within_min=30.0, hold_only_if_overloaded=True)
    played = evaluate_policy(rule, [light, heavy], CONFIG)
    reopt = evaluate_policy(make_baseline("reopt"), [light, heavy], CONFIG)
    assert played[0].routes == reopt[0].routes
    assert played[1].routes != reopt[1].routes


def test_a_threshold_no_plan_reaches_never_holds() -> None:
    heavy = geneva_day(6, 3, bookings_per_driver=(19.0, 21.0))
    rule = ReoptPolicy(
        commit_within_min=30.0, hold_only_if_overloaded=True, overload_left_out=10**6
    )
    played = evaluate_policy(rule, [heavy], CONFIG)[0]
    reopt = evaluate_policy(make_baseline("reopt"), [heavy], CONFIG)[0]
    assert played.routes == reopt.routes
    with pytest.raises(ValueError, match="overload_left_out"):
        ReoptPolicy(overload_left_out=0)
