"""Training the pairwise model: the day distribution, the shaped reward, a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rldispatch.agents.pairwise.agent import PairDQNConfig
from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import HELD_OUT_SEEDS
from rldispatch.training.fleet_days import (
    HELD_OUT_FLEET_SIZES,
    FleetDayDistribution,
    held_out_days,
)
from rldispatch.training.train_pairwise import (
    PairwiseTrainConfig,
    TrainingReward,
    train_pairwise,
)


def test_training_days_never_have_a_held_out_fleet_size() -> None:
    distribution = FleetDayDistribution()
    sizes = {len(distribution.day(i).drivers) for i in range(300)}
    assert sizes.isdisjoint(HELD_OUT_FLEET_SIZES)
    assert min(sizes) == 5 and max(sizes) == 30
    assert distribution.day(17) == distribution.day(17)  # a pure function of the index


def test_demand_scales_with_the_fleet() -> None:
    distribution = FleetDayDistribution()
    for index in range(40):
        day = distribution.day(index)
        per_driver = len(day.bookings) / len(day.drivers)
        assert 12.0 * 0.8 - 1 <= per_driver <= 14.5 * 1.25 + 1


def test_held_out_days_cycle_through_the_held_out_fleets_on_held_out_seeds() -> None:
    days = held_out_days(6)
    assert [len(day.drivers) for day in days] == [7, 13, 24, 7, 13, 24]
    assert [int(day.name.rsplit("-", 1)[1]) for day in days] == list(HELD_OUT_SEEDS[:6])


def test_shaped_day_total_differs_from_the_env_reward_by_a_constant() -> None:
    """Cancellation penalty times bookings: the shaping changes no policy's ranking."""
    day = FleetDayDistribution(fleet_sizes=(6,)).day(3)
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=6))
    weights = env.config.reward
    rng = np.random.default_rng(0)
    builder = FeatureBuilder(4)
    for waits in (0.0, 0.3):  # two different policies
        env.reset()
        reward = TrainingReward(weights, shaping=True, scale=1.0)
        reward.start(env)
        shaped_total = 0.0
        terminated = False
        while not terminated:
            state = builder.build(env)
            wait = rng.random() < waits
            action = 0 if wait else state.action(int(rng.integers(state.n_pairs)))
            _, env_reward, terminated, _, _ = env.step(action)
            shaped_total += reward(env, action != 0, env_reward)
        metrics = env.metrics()
        assert metrics.cancelled > 0 or waits == 0.0
        expected = metrics.reward + weights.cancellation_penalty * len(day.bookings)
        assert shaped_total == pytest.approx(expected, abs=1e-6)


def test_a_tiny_training_run_writes_models_that_dispatch(tmp_path: Path) -> None:
    config = PairwiseTrainConfig(
        agent=PairDQNConfig(hidden=16, head_hidden=8, batch_size=16, candidates_per_booking=3),
        days=FleetDayDistribution(fleet_sizes=(4, 6), demand_factors=(0.4, 0.4)),
        teacher="insertion",
        demo_days=1,
        pretrain_steps=5,
        demo_batch_size=4,
        max_days=2,
        max_wall_time_s=None,
        learning_starts=16,
        buffer_size=2_000,
        eval_every_days=1,
        eval_days=1,
    )
    result = train_pairwise(config, tmp_path / "run")
    assert result.days == 2 and result.steps > 0
    metrics = json.loads(result.metrics_path.read_text())
    stages = [(e["stage"], e["day"]) for e in metrics["evaluations"]]
    assert stages == [("known rewards", 0), ("warm start", 0), ("dqn", 1), ("dqn", 2)]
    assert "best" not in metrics["evaluations"][0]  # the untrained network is never kept
    assert any(day["td_loss"] is not None for day in metrics["days"])
    assert all((day["td_loss"] is None) == (day["q_mean"] is None) for day in metrics["days"])
    for path in (result.best_model_path, result.final_model_path):
        model = load_pairwise_model(path)
        assert model.metadata.candidates_per_booking == 3
        env = DispatchEnv(
            preset=None, scenario=held_out_days(1)[0], config=EnvConfig(max_drivers=7)
        )
        env.reset()
        assert env.action_masks()[PairwisePolicy(model).act(env)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("train_frequency", 0), ("epsilon_start", 1.5), ("teacher", "oracle"), ("reward_scale", 0)],
)
def test_a_bad_setting_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        PairwiseTrainConfig(**{field: value})


def test_a_rollout_leaves_the_day_it_branched_from_untouched() -> None:
    from rldispatch.training.train_pairwise import PairwiseTrainer

    config = PairwiseTrainConfig(
        agent=PairDQNConfig(hidden=8, head_hidden=8),
        days=FleetDayDistribution(fleet_sizes=(6,)),
        eval_every_days=0,
    )
    trainer = PairwiseTrainer(config, "unused", eval_days=[])
    env = trainer.env
    env.reset(options={"scenario": config.days.day(1)})
    for _ in range(10):
        env.step(FeatureBuilder(3).build(env).action(0))
    before = (env.sim.now_min, env.sim.status.copy(), [list(p) for p in env.sim.plans])
    state = trainer.features.build(env)
    returns = [trainer._rollout_return(env, state.action(p), 30) for p in range(state.n_pairs)]
    assert len(set(np.round(returns, 6))) > 1  # the branches differ
    assert env.sim.now_min == before[0]
    assert (env.sim.status == before[1]).all()
    assert [list(p) for p in env.sim.plans] == before[2]
