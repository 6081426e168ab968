"""The untrained guided re-optimiser is ``reopt``, decision for decision."""

from __future__ import annotations

import torch

from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

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
