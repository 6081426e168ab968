"""Acting on a plan through the env's actions, and the plan of a hindsight solution."""

from __future__ import annotations

from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action
from rldispatch.policies.hindsight import solve_scenario
from rldispatch.policies.plan_actions import DayPlan, PlanFollower, planned_action, planned_choice
from rldispatch.scenarios.fleet_days import geneva_day

DAY = geneva_day(2_000_100, 3)


def first_state_with_two_visible() -> DispatchEnv:
    env = DispatchEnv(preset=None, scenario=DAY)
    env.reset()
    while len(env.visible) < 2:
        env.step(0)
    return env


def test_the_visible_booking_with_the_earliest_planned_pickup_goes_to_its_driver():
    env = first_state_with_two_visible()
    first, second = (int(b) for b in env.visible[:2])
    grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
    driver_a = int(grid[:, 0].nonzero()[0][0])
    driver_b = int(grid[:, 1].nonzero()[0][0])
    driver_of = {first: driver_a, second: driver_b}
    assert planned_choice(env, driver_of, {first: 50.0, second: 40.0}) == (driver_b, 1)
    assert planned_choice(env, driver_of, {first: 30.0, second: 40.0}) == (driver_a, 0)
    assert planned_action(env, driver_of, {first: 30.0, second: 40.0}) == assignment_action(
        env, driver_a, 0
    )


def test_the_plan_waits_when_it_gives_no_visible_booking_to_a_driver_the_mask_allows():
    env = first_state_with_two_visible()
    assert planned_choice(env, {}, {}) is None
    booking = int(env.visible[0])
    grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
    refused = [d for d in range(env.sim.n_drivers) if not grid[d, 0]]
    if refused:
        assert planned_choice(env, {booking: refused[0]}, {booking: 0.0}) is None
    assert planned_action(env, {}, {}) is None


def test_following_a_hindsight_plan_serves_its_bookings_with_its_drivers():
    result = solve_scenario(DAY, time_limit_s=1.0)
    plan = DayPlan.from_hindsight(result, [b.id for b in DAY.bookings])
    served = {stop.booking for route in result.routes for stop in route}
    assert {DAY.bookings[k].id for k in plan.driver_of} == served
    env = DispatchEnv(preset=None, scenario=DAY)
    env.reset()
    follower = PlanFollower(plan)
    terminated = False
    while not terminated:
        action = follower.act(env)
        assert env.action_masks()[action]
        _, _, terminated, _, _ = env.step(action)
    sim = env.sim
    for booking, driver in plan.driver_of.items():
        if sim.assigned_driver[booking] >= 0:
            assert sim.assigned_driver[booking] == driver
