"""``guided-reopt`` with the look ahead: its own action against the known reward's best
assignments, each played on in a copy of the day; the best is taken, ties to its own."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from rldispatch.agents.guided_reopt.lookahead import GuidedLookaheadPolicy
from rldispatch.agents.guided_reopt.model_file import GuidedReoptMetadata, save_guided_model
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.guided_reopt.serving import GuidedPlayer
from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import known_reward_policy
from rldispatch.cli import main
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import assignment_action
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.fleet_days import geneva_day

OVERLOADED = geneva_day(6, 4, bookings_per_driver=(19.0, 21.0))


def assert_same_actions(policy: GuidedLookaheadPolicy, twin: GuidedReoptPolicy, steps: int) -> None:
    """``policy`` takes ``twin``'s action at each of the first ``steps`` decisions of the
    overloaded day."""
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=EnvConfig(max_drivers=4))
    env.reset(options={"scenario": OVERLOADED})
    for _ in range(steps):
        action = policy.act(env)
        assert action == twin.act(env)
        env.step(action)


def test_each_action_is_the_best_played_on_of_its_own_and_the_known_rewards_best() -> None:
    config = EnvConfig(max_drivers=4)
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), candidates=2)
    twin = GuidedReoptPolicy(TermNetwork())  # the same re-plans at the same states: reopt
    greedy = known_reward_policy(config.reward)
    expert = LookaheadExpert(greedy.q_function, 2)
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=config)
    env.reset(options={"scenario": OVERLOADED})
    overruled = looked = 0
    terminated = False
    while not terminated:
        own = twin.act(env)
        state = greedy.features.build(env)
        _, order = expert.ranked(state)
        looked_at = dict.fromkeys(state.action(int(c)) for c in order)
        actions = [own] + [a for a in looked_at if a != own]
        action = policy.act(env)
        if len(actions) == 1:
            assert action == own
        else:
            rewards = [expert.action_reward(env, a) for a in actions]
            best = max(rewards)
            assert action == actions[rewards.index(best)]  # the first best: its own on ties
            looked += 1
        overruled += action != own
        _, _, terminated, _, _ = env.step(action)
    assert looked > 0
    assert overruled > 0  # the look changed some of reopt's decisions
    assert policy.overruled == overruled


def test_candidates_are_checked_and_the_policy_pickles_after_use() -> None:
    with pytest.raises(ValueError, match="candidates"):
        GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), candidates=0)
    config = EnvConfig(max_drivers=4)
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), candidates=1)
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=config)
    env.reset(options={"scenario": OVERLOADED})
    for _ in range(3):
        env.step(policy.act(env))
    copy = pickle.loads(pickle.dumps(policy))  # worker processes of evaluate --jobs
    assert copy.candidates == 1 and copy.guided.name == policy.guided.name


def test_evaluate_plays_a_guided_model_with_its_look_ahead(tmp_path: Path) -> None:
    model = save_guided_model(
        tmp_path / "guided.safetensors", TermNetwork(), GuidedReoptMetadata(hidden=32)
    )
    day = save_scenario(geneva_day(3, 3), tmp_path / "day.json")
    out = tmp_path / "report.json"
    args = ["evaluate", "--model", str(model), "--scenario", str(day), "--lookahead", "2"]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["policies"]) == {"guided-reopt", "guided-reopt+lookahead"}


@pytest.mark.parametrize("limit", ["budget", "stop"])
def test_a_spent_budget_or_a_stop_leaves_the_re_plan_s_own_action(limit: str) -> None:
    with pytest.raises(ValueError, match="time_budget_s"):
        GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), time_budget_s=0.0)
    budget = 1e-9 if limit == "budget" else None  # spent by the first rollout step
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), 3, time_budget_s=budget)
    if limit == "stop":
        policy.should_stop = lambda: True
    twin = GuidedReoptPolicy(TermNetwork())
    if limit == "budget":  # the re-plan begins past the decision's deadline: its warm start
        twin.replan_deadline = 0.0
    assert_same_actions(policy, twin, 25)
    assert policy.cut_short > 0 and policy.overruled == 0
    assert policy.guided.cut_short_replans == twin.cut_short_replans
    assert (twin.cut_short_replans > 0) == (limit == "budget")


def test_a_budgeted_decision_s_re_plan_stops_at_the_decision_s_deadline() -> None:
    config = EnvConfig(max_drivers=4)
    budget_s = 5.0
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), 2, time_budget_s=budget_s)
    deadlines: list[float | None] = []
    policy.guided.on_replan = lambda *_: deadlines.append(policy.guided.replan_deadline)
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=config)
    env.reset(options={"scenario": OVERLOADED})
    for _ in range(10):
        started = time.perf_counter()
        replans = len(deadlines)
        action = policy.act(env)
        for deadline in deadlines[replans:]:
            assert deadline is not None and started < deadline <= time.perf_counter() + budget_s
        assert policy.guided.replan_deadline is None  # only within a decision
        env.step(action)
    assert deadlines
    unbudgeted = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), 2)
    unbudgeted.guided.on_replan = lambda *_: deadlines.append(unbudgeted.guided.replan_deadline)
    deadlines.clear()
    unbudgeted.act(env)
    assert deadlines == [None]


def test_a_booking_s_driver_is_the_one_whose_rollout_ends_best() -> None:
    config = EnvConfig(max_drivers=4)
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), candidates=2)
    expert = LookaheadExpert(known_reward_policy(config.reward).q_function, 2)
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=config)
    env.reset(options={"scenario": OVERLOADED})
    picked = changed = 0
    for _ in range(30):
        scores = policy.guided.candidate_scores(env, 0)
        drivers = np.array([score.driver for score in scores], dtype=np.int64)
        if drivers.size > 1:
            rewards = [
                expert.action_reward(env, assignment_action(env, int(d), 0)) for d in drivers[:3]
            ]
            pick = policy.pick_driver(env, 0, drivers)
            assert pick == rewards.index(max(rewards))
            picked += 1
            changed += pick != 0
        env.step(policy.guided.act(env))
    assert picked > 0 and changed > 0


def test_a_served_suggestion_s_budget_begins_with_its_re_plan() -> None:
    config = EnvConfig(max_drivers=4)
    env = DispatchEnv(preset=None, scenario=OVERLOADED, config=config)
    env.reset(options={"scenario": OVERLOADED})
    walker = GuidedReoptPolicy(TermNetwork())
    while env.action_masks()[1:].reshape(4, -1)[:, 0].sum() < 2:  # two drivers can take it
        env.step(walker.act(env))
    for budget_s, cut in ((1e-9, True), (60.0, False)):
        policy = GuidedReoptPolicy(TermNetwork())
        player = GuidedPlayer(policy, GuidedLookaheadPolicy(policy, 2, time_budget_s=budget_s))
        drivers, _, _ = player.slot_values(env, 0)
        assert policy.replans == 1 and policy.replan_deadline is None
        assert policy.cut_short_replans == int(cut)  # its search stopped at the budget
        assert drivers.size > 1
        if cut:
            assert player.slot_pick(env, 0, drivers) == 0  # no time left to play on
            assert player.lookahead.cut_short == 1


def test_rollouts_stop_at_the_recent_decisions_quantile_before_their_rollouts() -> None:
    with pytest.raises(ValueError, match="tail_quantile"):
        GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), time_budget_s=1.0, tail_quantile=0)
    budget_s = 5.0
    policy = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), 2, time_budget_s=budget_s)
    started = time.perf_counter()
    assert policy.rollout_deadline(started) == started + budget_s  # nothing seen yet
    for mostly, quantile in ((0.01, 0.01), (2.0, 2.0)):
        policy._before_rollouts.clear()
        policy._before_rollouts.extend([mostly] * 95 + [1.0] * 5)
        assert policy.rollout_deadline(started) == pytest.approx(started + quantile)
        assert len(policy._before_rollouts) == 101  # this decision's time joined them
    budget_only = GuidedLookaheadPolicy(
        GuidedReoptPolicy(TermNetwork()), 2, time_budget_s=budget_s, tail_quantile=None
    )
    budget_only._before_rollouts.extend([0.01] * 100)
    assert budget_only.rollout_deadline(started) == started + budget_s
    unbudgeted = GuidedLookaheadPolicy(GuidedReoptPolicy(TermNetwork()), 2)
    assert unbudgeted.rollout_deadline(started) is None

    # Decisions past the quantile at once (every recent one took no time): no rollout, each
    # decision the re-plan's own, each re-plan searched to its end within the budget.
    policy._before_rollouts.clear()
    policy._before_rollouts.extend([0.0] * 100)
    assert_same_actions(policy, GuidedReoptPolicy(TermNetwork()), 10)
    assert policy.cut_short > 0 and policy.overruled == 0
    assert policy.guided.cut_short_replans == 0
