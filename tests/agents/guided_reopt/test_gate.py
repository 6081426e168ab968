"""The commit gate: zero is reopt, a negative gate holds planned bookings back, its labels
come from the full-information plan, and its cross-entropy falls on a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.features import GATE_FEATURES, STATE_FEATURES
from rldispatch.agents.guided_reopt.gate import gate_targets
from rldispatch.agents.guided_reopt.labels import StateLabel
from rldispatch.agents.guided_reopt.learning import gate_step
from rldispatch.agents.guided_reopt.network import TERMS, TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

DAY = geneva_day(5, 3)
CONFIG = EnvConfig(max_drivers=3)


@pytest.mark.parametrize("terms", [("gate",), TERMS])
def test_a_zero_gate_takes_reopts_decisions(terms: tuple[str, ...]) -> None:
    reopt = evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0]
    policy = GuidedReoptPolicy(TermNetwork(terms=terms))
    guided = evaluate_policy(policy, [DAY], CONFIG)[0]
    assert guided.routes == reopt.routes
    assert guided.reward == reopt.reward


def test_a_negative_gate_holds_bookings_but_commits_those_due() -> None:
    network = TermNetwork(terms=("gate",))
    with torch.no_grad():
        network.gate[-1].bias.fill_(-1.0)
    policy = GuidedReoptPolicy(network, floor_min=15.0)
    played = evaluate_policy(policy, [DAY], CONFIG)[0]
    reopt = evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0]
    assert policy.held > 0
    assert played.routes != reopt.routes
    assert played.completion_rate > 0.5  # the floor still commits what is due


def test_gate_labels_commit_only_what_the_plan_serves_now_with_that_driver() -> None:
    label = StateLabel(now=(1, 2), later=(3,), driver_of={1: 0, 2: 1, 3: 0}, end_booking=(1, 2))
    planned = {1: 0, 2: 0, 3: 0, 4: 1}
    targets = gate_targets([1, 2, 3, 4], planned, label)
    # 1: now, same driver; 2: now, other driver; 3: later; 4: never served.
    assert targets.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_the_gate_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    network = TermNetwork(terms=("gate",))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(64, len(GATE_FEATURES) + len(STATE_FEATURES))).astype(np.float32)
    targets = (rows[:, 0] < 0.0).astype(np.float32)  # commit what is due soon
    losses = [gate_step(network, optimizer, rows, targets, 1.0) for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0]
    scores = network.gate_scores(rows)
    assert np.mean((scores >= 0) == (targets > 0.5)) > 0.9


def test_gate_terms_are_a_config_choice() -> None:
    assert GuidedReoptConfig(terms="gate").term_names() == ("gate",)
    assert GuidedReoptConfig(terms="prize,gate").term_names() == ("prize", "gate")
    assert GuidedReoptConfig().term_names() == ("prize", "value")
    assert "gate" in GuidedReoptConfig(terms="all").term_names()
