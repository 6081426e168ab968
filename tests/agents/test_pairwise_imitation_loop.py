"""DAgger on hindsight plans and on the lookahead expert: the network learns the expert's
choices, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.pairwise.agent import PairDQNAgent
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.imitation import ImitationData
from rldispatch.agents.pairwise.imitation_loop import (
    HindsightPlans,
    ImitationSettings,
    fit,
    imitate,
    lookahead_labeller,
    plan_labeller,
    play_and_label,
)
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day

DAYS = [geneva_day(2_000_300 + k, 4) for k in range(2)]
KNOWN = TrainingReward(RewardConfig(), 1.0, 0.2).known_reward()


def new_agent() -> PairDQNAgent:
    return PairDQNAgent(PairwiseConfig(), seed=0, known_reward=KNOWN)


def new_env() -> DispatchEnv:
    return DispatchEnv(preset=None, scenarios=DAYS, config=EnvConfig(max_drivers=4))


@pytest.fixture(scope="module")
def plans() -> HindsightPlans:
    plans = HindsightPlans(time_limit_s=1.0)
    for day in DAYS:
        plans.get(day, None)
    return plans


@pytest.mark.parametrize("target", ["driver", "action"])
def test_a_few_imitation_steps_raise_the_agreement_with_the_plans(plans, target):
    agent, env, features = new_agent(), new_env(), FeatureBuilder(6)
    rng = np.random.default_rng(0)
    data = ImitationData()
    for day in DAYS:
        labeller = plan_labeller(plans.get(day, None))
        play_and_label(agent, features, env, day, labeller, 0.0, rng, data, target)
    assert len(data) > 50
    measure = ImitationSettings(epochs=1, learning_rate=1e-12, batch_size=10_000, target=target)
    train = ImitationSettings(epochs=30, learning_rate=3e-3, target=target)
    frozen = torch.optim.SGD(agent.q_network.parameters(), lr=0.0)
    loss_before, agreement_before = fit(agent, data, measure, frozen, rng)
    optimizer = torch.optim.Adam(agent.q_network.parameters(), lr=train.learning_rate)
    fit(agent, data, train, optimizer, rng)
    loss_after, agreement_after = fit(agent, data, measure, frozen, rng)
    assert loss_after < loss_before
    assert agreement_after > agreement_before + 0.05


def test_imitation_is_deterministic_for_a_seed(plans):
    settings = ImitationSettings(rounds=2, epochs=1, beta=0.5)
    weights = []
    for _ in range(2):
        agent = new_agent()
        stats = imitate(agent, FeatureBuilder(6), new_env(), DAYS, settings, 3, plans)
        assert [s.round for s in stats] == [0, 1]
        assert stats[1].states > stats[0].states  # DAgger keeps the states of every round
        weights.append(agent.target_network.state_dict())
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    assert not torch.equal(weights[0]["pair_out.weight"], new_agent().q_network.pair_out.weight)


def test_hindsight_plans_are_solved_once_and_kept_in_their_folder(tmp_path):
    plans = HindsightPlans(time_limit_s=0.5, folder=tmp_path)
    assert DAYS[0] not in plans
    first = plans.get(DAYS[0], None)
    assert DAYS[0] in plans
    assert list(tmp_path.iterdir())
    again = HindsightPlans(time_limit_s=0.5, folder=tmp_path).get(DAYS[0], None)
    assert again == first


@pytest.mark.parametrize(
    "field, value",
    [("rounds", 0), ("beta", 1.5), ("temperature", 0.0), ("target", "both"), ("epochs", 0)],
)
def test_bad_settings_name_their_field(field, value):
    with pytest.raises(ValueError, match=f"imitation.{field}"):
        ImitationSettings(**{field: value})


def test_a_pairwise_run_with_imitation_days_imitates_before_it_learns(tmp_path):
    from rldispatch.agents.kinds import agent_kind
    from rldispatch.scenarios.fleet_days import FleetDayDistribution
    from rldispatch.training.days import FleetDays
    from rldispatch.training.train import RunSettings, TrainingRun

    config = PairwiseConfig(
        hidden=8,
        head_hidden=8,
        batch_size=16,
        learning_starts=10_000,
        imitation_days=1,
        imitation_rounds=1,
        imitation_time_limit_s=0.5,
    )
    days = FleetDays(FleetDayDistribution(fleet_sizes=(5,)), selection=1)
    run = TrainingRun(
        agent_kind("pairwise"), config, tmp_path, days, RunSettings(max_days=1), [], None
    )
    untrained = {k: v.clone() for k, v in run.learner.agent.target_network.state_dict().items()}
    run.start(resume=False)
    run.run()
    stats = run.learner.imitation_stats
    assert len(stats) == 1 and stats[0].states > 0
    trained = run.learner.agent.target_network.state_dict()
    assert not torch.equal(trained["pair_out.weight"], untrained["pair_out.weight"])


def test_a_local_plan_is_the_played_routes_or_better_by_the_days_reward():
    from rldispatch.agents.pairwise.imitation_loop import local_plan, play_greedy
    from rldispatch.policies.ride_model import RideProblem, replay, replay_reward
    from rldispatch.rewards import RewardConfig
    from rldispatch.sim.simulator import DaySimulator

    day, reward = DAYS[0], RewardConfig()
    routes = play_greedy(new_agent(), FeatureBuilder(6), new_env(), day)
    plan = local_plan(day, routes, 0.5, reward)
    problem = RideProblem.whole_day(DaySimulator(day))
    planned = [[] for _ in day.drivers]
    for booking in sorted(plan.driver_of, key=plan.pickup_of.__getitem__):
        planned[plan.driver_of[booking]].append(booking)
    played, improved = replay(problem, routes), replay(problem, planned)
    assert not improved.problems
    assert replay_reward(problem, improved, reward) >= replay_reward(problem, played, reward)


def test_imitation_is_off_by_default_and_a_bad_target_names_its_field():
    from rldispatch.agents.config_fields import ConfigError

    assert PairwiseConfig().imitation_days == 0
    with pytest.raises(ConfigError, match="pairwise.imitation_target"):
        PairwiseConfig(imitation_target="plan")
    with pytest.raises(ConfigError, match="pairwise.imitation_time_limit_s"):
        PairwiseConfig(imitation_time_limit_s=0.0)


def test_lookahead_imitation_labels_one_decision_in_label_every_and_trains_the_network():
    from rldispatch.agents.pairwise.lookahead import LookaheadExpert

    agent, env, features = new_agent(), new_env(), FeatureBuilder(6)
    expert = LookaheadExpert(agent.q_function, candidates=3)
    rng = np.random.default_rng(0)
    every_decision, every_third = ImitationData(), ImitationData()
    play_and_label(
        agent, features, env, DAYS[0], lookahead_labeller(expert), 0.0, rng, every_decision
    )
    decisions = env.decisions
    play_and_label(
        agent,
        features,
        env,
        DAYS[0],
        lookahead_labeller(expert),
        0.0,
        rng,
        every_third,
        label_every=3,
    )
    assert len(every_decision) == decisions
    assert len(every_third) == (decisions + 2) // 3
    # Played greedily (beta 0), the decisions are the same: each third one is labelled alike.
    assert every_third.labels == every_decision.labels[::3]
    assert any(
        label != expert.ranked(state)[0]
        for state, label in zip(every_decision.states, every_decision.labels, strict=True)
    )

    settings = ImitationSettings(
        rounds=2, epochs=1, search="lookahead", target="action", label_every=4, beta=0.5
    )
    weights = []
    for _ in range(2):
        trained = new_agent()
        stats = imitate(trained, FeatureBuilder(6), new_env(), DAYS, settings, 5)
        assert stats[1].states > stats[0].states > 0
        weights.append(trained.target_network.state_dict())
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    assert not torch.equal(weights[0]["pair_out.weight"], new_agent().q_network.pair_out.weight)


def test_a_pairwise_config_takes_the_lookahead_expert_and_checks_its_fields():
    from rldispatch.agents.config_fields import ConfigError

    config = PairwiseConfig(imitation_search="lookahead", imitation_candidates=2)
    assert config.imitation_label_every == 1
    with pytest.raises(ConfigError, match="pairwise.imitation_candidates"):
        PairwiseConfig(imitation_candidates=0)
    with pytest.raises(ConfigError, match="pairwise.imitation_label_every"):
        PairwiseConfig(imitation_label_every=0)
    with pytest.raises(ValueError, match="imitation.label_every"):
        ImitationSettings(label_every=0)
