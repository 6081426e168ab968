"""The hindsight plan of a scenario against the online plans of the same day."""

from __future__ import annotations

import dataclasses

import pytest

from rldispatch.policies import make_baseline
from rldispatch.policies.hindsight import Stop, solve_scenario
from rldispatch.policies.hindsight_check import check_scenario_plan
from rldispatch.policies.ride_model import (
    COST_SCALE,
    RideModel,
    RideProblem,
    replay,
    replay_reward,
)
from rldispatch.policies.routing import search_parameters
from rldispatch.reports.report import hindsight_beaten
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.sim.simulator import DaySimulator
from rldispatch.training.evaluation import evaluate_policies, hindsight_results

DAY = geneva_day(2_000_007, 3)


@pytest.fixture(scope="module")
def played():
    policies = {name: make_baseline(name) for name in ("insertion", "matching")}
    return {name: days[0] for name, days in evaluate_policies(policies, [DAY]).items()}


def test_hindsight_from_the_best_online_plan_is_never_worse_than_it(played):
    best = max(played.values(), key=lambda day: day.reward)
    # A search too short to improve much must still return at least the plan it was given.
    result = solve_scenario(DAY, time_limit_s=0.2, initial_routes=best.routes)
    assert result.feasible, result.notes
    assert result.metrics.reward >= best.reward - 1e-9
    assert check_scenario_plan(DAY, result.routes) == []


def test_the_given_plan_replays_to_at_least_its_online_reward(played):
    for day in played.values():
        result = solve_scenario(DAY, time_limit_s=0.1, initial_routes=day.routes)
        assert result.metrics.reward >= day.reward - 1e-9


def test_the_exact_objective_is_the_reward_without_its_balance_bonus():
    reward = RewardConfig()
    problem = RideProblem.whole_day(DaySimulator(DAY))
    model = RideModel(problem, reward)
    params = search_parameters(None, "PARALLEL_CHEAPEST_INSERTION", "GREEDY_DESCENT")
    solution = model.routing.SolveWithParameters(params)
    routes = model.booking_routes(solution)
    plan = replay(problem, routes)
    assert plan.problems == ()
    without_balance = replay_reward(problem, plan, reward) - reward.balance_reward(plan.rides)
    expected = reward.assignment_bonus * len(DAY.bookings) - without_balance
    assert solution.ObjectiveValue() / COST_SCALE == pytest.approx(expected, abs=0.05)


def test_hindsight_results_start_from_the_given_plans(played):
    starts = [played["matching"].routes]
    one = hindsight_results([DAY], 0.5, initial_routes=starts, jobs=1)
    assert one[0].metrics.reward >= played["matching"].reward - 1e-9


def test_scenario_checker_catches_broken_rules():
    result = solve_scenario(DAY, time_limit_s=0.3)
    routes = [list(route) for route in result.routes]
    driver = next(k for k, route in enumerate(routes) if len(route) >= 4)
    route = routes[driver]
    # A pickup a minute before the window opens and before the driver can be there.
    first = route[0]
    booking = next(b for b in DAY.bookings if b.id == first.booking)
    route[0] = dataclasses.replace(first, time_min=booking.window[0] - 1.0)
    problems = check_scenario_plan(DAY, routes)
    assert any("outside" in problem for problem in problems)
    # Two bookings on board at once.
    route[0] = first
    route[1], route[2] = route[2], route[1]
    problems = check_scenario_plan(DAY, routes)
    assert any("another booking" in problem or "not a pickup" in problem for problem in problems)
    # Served twice.
    routes[driver] = list(result.routes[driver])
    other = (driver + 1) % len(routes)
    routes[other] = list(routes[other]) + list(result.routes[driver][:2])
    assert any("twice" in problem for problem in check_scenario_plan(DAY, routes))
    assert Stop  # the stop type the checker reads


def test_hindsight_beaten_counts_days_and_margins(played):
    online = {"a": [played["insertion"]], "b": [played["matching"]]}
    low = dataclasses.replace(played["insertion"], reward=played["insertion"].reward - 3.0)
    summary = hindsight_beaten(online, [low])
    assert summary["days"] == 1 and summary["of_days"] == 1
    assert summary["by_policy"]["a"] == {"days": 1, "max_margin": pytest.approx(3.0)}
    high = dataclasses.replace(low, reward=1e9)
    assert hindsight_beaten(online, [high])["days"] == 0


def test_light_pair_relocation_replaces_the_full_operator():
    from ortools.util import optional_boolean_pb2

    light = search_parameters(1.0, "PARALLEL_CHEAPEST_INSERTION", light_pair_relocate=True)
    full = search_parameters(1.0, "PARALLEL_CHEAPEST_INSERTION")
    assert light.local_search_operators.use_light_relocate_pair == optional_boolean_pb2.BOOL_TRUE
    assert light.local_search_operators.use_relocate_pair == optional_boolean_pb2.BOOL_FALSE
    assert full.local_search_operators.use_relocate_pair != optional_boolean_pb2.BOOL_FALSE
