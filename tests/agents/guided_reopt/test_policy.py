"""The untrained guided re-optimiser is ``reopt``, decision for decision."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import FORCED_PRIZE, TAKE_LOOKAHEAD, GuidedReoptPolicy
from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import known_reward_policy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.ride_model import ObjectiveTerms, RideModel, RideProblem, replay
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy, run_day

DAYS = [geneva_day(5, 3), geneva_day(6, 3, bookings_per_driver=(19.0, 21.0))]


def test_a_zero_network_takes_reopts_decisions() -> None:
    config = EnvConfig(max_drivers=3)
    reopt = evaluate_policy(make_baseline("reopt"), DAYS, config)
    guided = evaluate_policy(GuidedReoptPolicy(TermNetwork()), DAYS, config)
    for ours, theirs in zip(guided, reopt, strict=True):
        assert ours.routes == theirs.routes
        assert ours.reward == theirs.reward


def test_a_low_prize_leaves_bookings_open() -> None:
    network = TermNetwork(terms=("prize",), term_scale=50.0)
    with torch.no_grad():
        network.prize[-1].bias.fill_(-5.0)  # about -50 reward units: below a booking's worth
    config = EnvConfig(max_drivers=3)
    played = evaluate_policy(GuidedReoptPolicy(network), DAYS[:1], config)[0]
    reopt = evaluate_policy(make_baseline("reopt"), DAYS[:1], config)[0]
    assert played.completion_rate < reopt.completion_rate


def _take_network(bias: float) -> TermNetwork:
    network = TermNetwork(terms=("take",))
    with torch.no_grad():
        network.take[-1].bias.fill_(bias)
    return network


@pytest.mark.parametrize("take_driver", ["insertion", "known-reward", "lookahead"])
def test_a_zero_take_head_waits_as_reopt_does(take_driver: str) -> None:
    config = EnvConfig(max_drivers=3)
    reopt = evaluate_policy(make_baseline("reopt"), DAYS[1:], config)[0]
    policy = GuidedReoptPolicy(_take_network(0.0), take_driver=take_driver)
    guided = evaluate_policy(policy, DAYS[1:], config)[0]
    assert guided.routes == reopt.routes
    assert guided.reward == reopt.reward


def test_a_positive_take_head_takes_what_the_plan_leaves_out_instead_of_waiting() -> None:
    day = DAYS[1]  # more bookings than 3 drivers serve: the plan leaves some out
    config = EnvConfig(max_drivers=3)
    waits = {}
    for name, policy in (
        ("reopt", make_baseline("reopt")),
        ("take", GuidedReoptPolicy(_take_network(1.0))),
    ):
        env = DispatchEnv(preset=None, scenario=day, config=config)
        run_day(policy, env, day)
        waits[name] = env.idle_waits
    assert waits["reopt"] > 0
    assert waits["take"] < waits["reopt"]


class _RecordingPolicy(GuidedReoptPolicy):
    """Keeps each forced re-plan: the forced booking, its problem and the plan's routes."""

    def __init__(self, network: TermNetwork) -> None:
        super().__init__(network, take_driver="replan")
        self.forced: list[tuple[int, RideProblem, list[list[int]]]] = []

    def replan_model(
        self,
        problem: RideProblem,
        reward: RewardConfig,
        terms: ObjectiveTerms | None,
        warm_routes: list[list[int]],
    ) -> tuple[RideModel, Any | None]:
        model, solution = super().replan_model(problem, reward, terms, warm_routes)
        forced = [b for b, prize in (terms.prize if terms else {}).items() if prize >= FORCED_PRIZE]
        if forced and solution is not None:
            self.forced.append((forced[0], problem, model.booking_routes(solution)))
        return model, solution


def test_replan_take_driver_commits_the_driver_of_a_re_plan_with_the_booking_forced_in() -> None:
    day = DAYS[1]  # more bookings than 3 drivers serve: the plan leaves some out
    config = EnvConfig(max_drivers=3)
    policy = _RecordingPolicy(_take_network(1.0))
    env = DispatchEnv(preset=None, scenario=day, config=config)
    env.reset(options={"scenario": day})
    slots = config.visible_slots
    checked = 0
    terminated = False
    while not terminated:
        forced, misses = len(policy.forced), policy.forced_misses
        action = policy.act(env)
        committed = None
        if len(policy.forced) > forced and policy.forced_misses == misses:
            driver, slot = divmod(action - 1, slots)
            booking, problem, routes = policy.forced[-1]
            assert int(env.visible[slot]) == booking
            assert booking in routes[driver]  # the forced re-plan's driver, none other
            assert replay(problem, routes).problems == ()  # every pickup in its window
            assert env.action_masks()[action]
            assert policy._driver_of[booking] == driver  # the forced plan is the policy's now
            committed = (booking, driver)
        _, _, terminated, _, _ = env.step(action)
        if committed is not None:
            booking, driver = committed
            assert env.sim.assigned_driver[booking] == driver
            checked += 1
    assert checked > 0
    assert policy.taken >= checked


def test_take_driver_is_checked() -> None:
    with pytest.raises(ValueError, match="take_driver"):
        GuidedReoptPolicy(_take_network(1.0), take_driver="nearest")


@pytest.mark.parametrize("take_driver", ["known-reward", "lookahead"])
def test_a_known_reward_take_acts_where_reopt_waits(take_driver: str) -> None:
    """``known-reward``: the known-reward policy's action; ``lookahead``: the best of its
    best assignments played on."""
    day = geneva_day(6, 5, bookings_per_driver=(19.0, 21.0))  # overloaded: reopt waits
    config = EnvConfig(max_drivers=5)
    policy = GuidedReoptPolicy(_take_network(1.0), take_driver=take_driver)
    reopt = make_baseline("reopt")
    greedy = known_reward_policy(config.reward)
    expert = LookaheadExpert(greedy.q_function, TAKE_LOOKAHEAD)
    env = DispatchEnv(preset=None, scenario=day, config=config)
    env.reset(options={"scenario": day})
    taken = differs = 0
    terminated = False
    while not terminated:
        planned = reopt.act(env)
        action = policy.act(env)
        if planned != 0:
            assert action == planned
        else:
            expected = greedy.act(env)
            if take_driver == "lookahead":
                state = greedy.features.build(env)
                expected = state.action(expert.choose(env, state))
            assert action == expected
            taken += action != 0
            differs += action != greedy.act(env)
        _, _, terminated, _, _ = env.step(action)
    assert taken > 0
    assert policy.taken == taken
    if take_driver == "lookahead":
        assert expert.rollouts > 0
        assert differs > 0  # the look ahead changed some of the known reward's choices
