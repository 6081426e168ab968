"""The untrained guided re-optimiser is ``reopt``, decision for decision."""

from __future__ import annotations

import torch

from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
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


def test_a_zero_take_head_waits_as_reopt_does() -> None:
    config = EnvConfig(max_drivers=3)
    reopt = evaluate_policy(make_baseline("reopt"), DAYS[1:], config)[0]
    guided = evaluate_policy(GuidedReoptPolicy(_take_network(0.0)), DAYS[1:], config)[0]
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
