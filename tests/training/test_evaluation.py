"""Playing days over several processes gives what one process gives."""

from __future__ import annotations

import pytest
import torch

from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.parallel import check_jobs, parallel_map
from rldispatch.policies import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import (
    BLOCKS_PER_JOB,
    _blocks,
    evaluate_policies,
    evaluate_policy,
)

DAYS = [geneva_day(2_000_100 + k, 3) for k in range(5)]


def test_days_over_two_processes_equal_one_process():
    names = ("random", "matching", "reopt")
    one = evaluate_policies({n: make_baseline(n, seed=4) for n in names}, DAYS, jobs=1)
    two = evaluate_policies({n: make_baseline(n, seed=4) for n in names}, DAYS, jobs=2)
    assert one == two
    for name in names:
        assert [day.routes for day in one[name]] == [day.routes for day in two[name]]
        assert all(len(day.decision_ms) == day.decisions for day in two[name])
    # Two processes cut the five days into blocks, except for random, which carries its
    # generator from one day to the next.
    assert len(_blocks(make_baseline("matching"), len(DAYS), 2)) == min(
        len(DAYS), 2 * BLOCKS_PER_JOB
    )
    assert len(_blocks(make_baseline("random"), len(DAYS), 2)) == 1


def test_random_runs_on_from_day_to_day_in_one_block():
    played = evaluate_policy(make_baseline("random", seed=1), DAYS[:1] * 2, jobs=2)
    assert played[0].routes != played[1].routes


def test_parallel_map_keeps_the_order_of_the_items():
    assert parallel_map(abs, [-3, 2, -1, 0], jobs=2) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="jobs"):
        check_jobs(0)


def test_a_learned_policy_plays_the_same_over_two_processes():
    """A pairwise network (its NumPy forward pass reads views of the PyTorch weights) plays
    the same days alike in the workers, and stays intact in the calling process."""
    torch.manual_seed(0)
    policy = PairwisePolicy(PairQNetwork(hidden=16, head_hidden=8))
    days = DAYS[:3]
    one = evaluate_policy(policy, days, jobs=1)
    two = evaluate_policy(policy, days, jobs=2)
    again = evaluate_policy(policy, days, jobs=1)
    assert one == two == again


def test_a_random_policy_runs_on_from_one_call_to_the_next_over_two_processes():
    """Its generator comes back from the worker, so a second call (a ``--repeats`` run)
    plays on from where the first stopped, as in one process."""
    one, two = make_baseline("random", seed=2), make_baseline("random", seed=2)
    first_one, again_one = (evaluate_policy(one, DAYS[:2], jobs=1) for _ in range(2))
    first_two, again_two = (evaluate_policy(two, DAYS[:2], jobs=2) for _ in range(2))
    assert first_one == first_two and again_one == again_two
    assert first_two != again_two


def test_each_policy_plays_in_its_own_env_config_over_two_processes():
    from rldispatch.env import EnvConfig

    policies = {name: make_baseline(name) for name in ("nearest", "matching")}
    configs = {"nearest": EnvConfig(max_drivers=3), "matching": EnvConfig(max_drivers=12)}
    one = evaluate_policies(policies, DAYS[:2], configs, jobs=1)
    two = evaluate_policies(policies, DAYS[:2], configs, jobs=2)
    assert one == two
    with pytest.raises(ValueError):
        evaluate_policies(policies, DAYS[:1], {"nearest": EnvConfig(max_drivers=2)}, jobs=1)
