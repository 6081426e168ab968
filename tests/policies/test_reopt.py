"""The rolling-horizon re-optimisation policy and the routing model it plans with."""

from __future__ import annotations

import numpy as np
import pytest

from rldispatch.domain import LATE_AFTER_REQUESTED_MIN, Booking, Driver, Scenario
from rldispatch.env import DispatchEnv
from rldispatch.policies import make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.policies.ride_model import RideModel
from rldispatch.policies.routing import search_cut_short, search_parameters
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

SMALL_DAYS = [geneva_day(2_000_000 + k, 3) for k in range(2)]


def myopic_day() -> Scenario:
    """Insertion gives ``b1`` to the closer driver ``a``, the only one who can carry ``b2``
    (two seats), whose window opens while ``a`` is still far away on ``b1``'s long ride."""
    return Scenario(
        name="myopic",
        coords="xy",
        horizon_min=300.0,
        drivers=(
            Driver("a", (0.0, 0.0), (0.0, 300.0), capacity=2),
            Driver("b", (3.0, 0.0), (0.0, 300.0), capacity=1),
        ),
        bookings=(
            Booking("b1", 0.0, (1.0, 0.0), (1.0, 40.0), 10.0, (0.0, 30.0)),
            Booking("b2", 0.0, (0.0, 1.0), (0.0, 2.0), 110.0, (100.0, 130.0), load=2),
        ),
    )


def play(policy, scenario: Scenario, check=None):
    """Play a day, asserting every action is valid; ``check(env)`` before each decision."""
    env = DispatchEnv(preset=None, scenario=scenario)
    env.reset()
    terminated = False
    while not terminated:
        if check is not None:
            check(env)
        action = policy.act(env)
        assert env.action_masks()[action]
        _, _, terminated, _, info = env.step(action)
        assert "invalid_action" not in info
    return env


@pytest.mark.parametrize("day", SMALL_DAYS, ids=lambda d: d.name)
def test_reopt_plays_whole_days_with_valid_actions_only(day):
    policy = ReoptPolicy()
    env = play(policy, day)
    metrics = env.metrics()
    assert metrics.served + metrics.cancelled == metrics.bookings
    assert policy.replans > 0


def test_reopt_keeps_committed_plans_locked():
    """Every re-plan keeps each driver's committed bookings on it, in order, starts it where
    its current ride ends, and keeps an on-time committed pickup on time."""
    policy = ReoptPolicy()
    checked = []

    def check(env):
        sim = env.sim
        if not any(sim.plans) or len(checked) > 25:
            return
        problem = policy.problem(sim)
        model = RideModel(problem, env.config.reward)
        params = search_parameters(None, "PARALLEL_CHEAPEST_INSERTION", "GREEDY_DESCENT")
        solution = model.routing.SolveWithParameters(params)
        assert solution is not None
        routes = model.booking_routes(solution)
        pickups = model.planned_pickup_min(solution)
        assert np.all(problem.start_min >= sim.anchor_min)
        for driver, plan in enumerate(sim.plans):
            kept = [b for b in routes[driver] if b in plan]
            assert kept == plan
            for booking in plan:
                assert pickups[booking] >= sim.now_min
                if booking in problem.keep_on_time:
                    late_after = sim.requested_min[booking] + LATE_AFTER_REQUESTED_MIN
                    assert pickups[booking] <= late_after + 0.5
        checked.append(sim.now_min)

    play(policy, SMALL_DAYS[0], check)
    assert len(checked) > 5


def test_reopt_is_deterministic_for_a_seed_and_budget():
    first = evaluate_policy(ReoptPolicy(seed=3), SMALL_DAYS[:1])
    second = evaluate_policy(ReoptPolicy(seed=3), SMALL_DAYS[:1])
    assert first == second
    assert first[0].routes == second[0].routes


def test_reopt_beats_myopic_insertion_on_a_crafted_day():
    day = myopic_day()
    insertion = evaluate_policy(make_baseline("insertion"), [day])[0]
    reopt = evaluate_policy(make_baseline("reopt"), [day])[0]
    assert insertion.served == 1
    assert reopt.served == 2
    assert reopt.reward > insertion.reward + 10.0
    assert reopt.routes == ((1,), (0,))


def test_reopt_is_a_baseline_and_refuses_bad_parameters():
    assert make_baseline("reopt", seed=2).name == "reopt"
    with pytest.raises(ValueError, match="reopt"):
        ReoptPolicy(horizon_min=0.0)


def test_reopt_replanning_every_quarter_hour_plays_valid_days_with_fewer_replans():
    every = ReoptPolicy()
    play(every, SMALL_DAYS[1])
    sparse = ReoptPolicy(replan_every_min=15.0, solution_limit=5)
    env = play(sparse, SMALL_DAYS[1])
    assert env.metrics().served > 0
    assert 0 < sparse.replans < every.replans


def test_a_re_plan_begun_past_its_deadline_keeps_the_warm_start_and_inserts_new_bookings():
    day = geneva_day(6, 4, bookings_per_driver=(19.0, 21.0))
    replans = []

    def listen(env, problem, warm_routes, model, solution):
        routes = model.booking_routes(solution)
        replans.append((warm_routes, routes, search_cut_short(model.routing)))

    stopped = ReoptPolicy()
    stopped.on_replan = listen
    stopped.replan_deadline = 0.0  # long past on time.perf_counter
    env = play(stopped, day)
    assert replans and all(cut for _, _, cut in replans)
    assert all(routes == warm for warm, routes, _ in replans)  # the warm start as it stands
    assert stopped.cut_short_replans == len(replans)
    assert stopped.fallbacks > 0  # the bookings no plan weighed go to cheapest insertion
    metrics = env.metrics()
    assert metrics.served > 0 and metrics.served + metrics.cancelled == metrics.bookings

    replans.clear()
    free = ReoptPolicy()
    free.on_replan = listen
    free.replan_deadline = float("inf")
    play(free, day)
    assert replans and not any(cut for _, _, cut in replans)  # a local optimum each time
    assert free.cut_short_replans == 0
