"""Evolution strategies over the linear commit gate or the take head: a zero vector is reopt,
the vector's layout, the antithetic step, an update moves the weights reproducibly, the model
file keeps them, a resumed run ends where an uninterrupted one does, and the selection keeps
the start (reopt) unless an iterate beats it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rldispatch.agents.config_fields import ConfigError
from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.es_learning import (
    EsLearner,
    es_direction,
    es_scale,
    gate_policy,
    get_vector,
    set_vector,
)
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.kinds import agent_kind
from rldispatch.cli import main
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

DAY = geneva_day(5, 3)
CONFIG = EnvConfig(max_drivers=3)
ES = GuidedReoptConfig(terms="gate", trainer="es", es_sigma=1.0, es_pairs=2, es_batch_days=1)


def test_a_zero_linear_gate_takes_reopts_decisions() -> None:
    reopt = evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0]
    policy = gate_policy(np.zeros(len(LINEAR_GATE_FEATURES)), 120.0, 15.0)
    guided = evaluate_policy(policy, [DAY], CONFIG)[0]
    assert guided.routes == reopt.routes
    assert guided.reward == reopt.reward
    assert policy.held == 0


def test_a_negative_linear_gate_holds_bookings_back() -> None:
    weights = np.zeros(len(LINEAR_GATE_FEATURES))
    weights[0] = -2.0  # score 1 - 2 < 0: hold everything beyond the floor
    policy = gate_policy(weights, 120.0, 15.0)
    played = evaluate_policy(policy, [DAY], CONFIG)[0]
    assert policy.held > 0
    assert played.completion_rate > 0.5  # the floor still commits what is due


def test_the_es_direction_follows_the_better_twins() -> None:
    eps = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    direction = es_direction(eps, np.array([2.0, -2.0, 0.0]))
    assert direction[0] > 0 > direction[1]
    assert es_direction(eps, np.zeros(3)).tolist() == [0.0, 0.0]


def test_the_reward_std_scale_steps_along_the_better_side() -> None:
    config = GuidedReoptConfig(terms="take", trainer="es", es_scale="reward_std")
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    plus, minus = np.array([10.0, 5.0]), np.array([0.0, 5.0])
    scale = es_scale(config, plus, minus)
    assert scale == pytest.approx(np.std([10.0, 5.0, 0.0, 5.0]))
    step = es_direction(directions, (plus - minus) / 2.0, scale)
    assert step[0] > 0 and step[1] == 0.0
    level = np.array([5.0, 5.0])
    assert not es_direction(directions, level - level, es_scale(config, level, level)).any()


def test_the_vector_round_trips_through_the_heads_last_layers() -> None:
    network = TermNetwork(hidden=4, terms=("prize", "value"))
    assert not get_vector(network, ("value",)).any()  # the start is zero: reopt
    vector = np.arange(10, dtype=np.float64)  # 4 weights and a bias, two heads
    set_vector(network, ("prize", "value"), vector)
    assert np.array_equal(get_vector(network, ("prize", "value")), vector)
    assert network.value[-1].bias.item() == 9.0
    with pytest.raises(ValueError, match="vector"):
        set_vector(network, ("value",), vector)
    with pytest.raises(ValueError, match="heads"):
        get_vector(network, ("gate",))


def test_es_config_names_the_bad_field() -> None:
    with pytest.raises(ConfigError, match="es_sigma"):
        GuidedReoptConfig(terms="take", trainer="es", es_sigma=0.0)
    with pytest.raises(ConfigError, match="es_pairs"):
        GuidedReoptConfig(terms="take", trainer="es", es_pairs=0)
    with pytest.raises(ConfigError, match="es_scale"):
        GuidedReoptConfig(terms="take", trainer="es", es_scale="max")
    with pytest.raises(ConfigError, match="terms"):
        GuidedReoptConfig(terms="take")  # no label to imitate
    with pytest.raises(ConfigError, match="es_features"):
        GuidedReoptConfig(terms="take", trainer="es", es_features="bias")


def _one_day(seed: int, config: GuidedReoptConfig = ES) -> EsLearner:
    env = DispatchEnv(preset=None, scenarios=[DAY], config=CONFIG)
    learner = EsLearner(config, env, seed)
    env.reset(options={"scenario": DAY})
    learner.start_day(env)
    terminated = env.sim.done
    while not terminated:
        _, reward, terminated, _, _ = env.step(learner.act(env))
    record = learner.end_day(env)
    assert record["es_updates"] == 1
    return learner


@pytest.fixture(scope="module")
def learner_3() -> EsLearner:
    """The learner after one day of seed 3 (the tests read it, none changes it)."""
    return _one_day(3)


def test_an_es_update_moves_the_weights_reproducibly(learner_3: EsLearner) -> None:
    first, again, other = learner_3, _one_day(3), _one_day(4)
    assert np.abs(first.weights).sum() > 0.0
    assert first.weights.tolist() == again.weights.tolist()
    assert first.weights.tolist() != other.weights.tolist()
    assert first.reopt_reward == {
        DAY.name: evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0].reward
    }


def test_two_worker_processes_give_the_weights_of_one(learner_3: EsLearner) -> None:
    two = GuidedReoptConfig(**{**ES.to_dict(), "es_jobs": 2})
    assert _one_day(3, two).weights.tolist() == learner_3.weights.tolist()


def test_es_features_limit_the_search() -> None:
    config = GuidedReoptConfig(
        terms="gate",
        trainer="es",
        es_sigma=3.0,
        es_batch_days=1,
        es_features="bias,left_out_per_driver",
    )
    learner = _one_day(3, config)
    weights = dict(zip(LINEAR_GATE_FEATURES, learner.weights.tolist(), strict=True))
    moved = [name for name, w in weights.items() if w != 0.0]
    assert moved and set(moved) <= {"bias", "left_out_per_driver"}
    with pytest.raises(ConfigError, match="es_features"):
        GuidedReoptConfig(terms="gate", trainer="es", es_features="bias,nowhere")


def test_the_model_file_keeps_the_gate_weights(tmp_path, learner_3: EsLearner) -> None:
    learner = learner_3
    path = learner.save_model(tmp_path / "gate.safetensors", CONFIG, "geneva", {})
    model = agent_kind("guided-reopt").load_model(path)
    assert model.policy.network.linear_gate
    assert model.policy.network.linear_weights().tolist() == learner.weights.tolist()
    assert model.training_summary["gate_weights"]["bias"] == learner.weights[0]
    played = evaluate_policy(model.policy, [DAY], CONFIG)[0]
    assert played == evaluate_policy(learner.policy("gate"), [DAY], CONFIG)[0]


def test_es_needs_the_gate_or_the_take_head_alone() -> None:
    with pytest.raises(ConfigError, match="trainer"):
        GuidedReoptConfig(trainer="es")
    with pytest.raises(ConfigError, match="trainer"):
        GuidedReoptConfig(trainer="es", terms="prize,gate")


def _train(out, days: int, resume: bool = False, *extra: str) -> int:
    config = ["--resume"] if resume else ["--config", str(out.parent / "es.json"), *extra]
    return main(
        [
            "train", "--agent", "guided-reopt", "--fleets", "3", "--days", str(days),
            "--checkpoint-every", "1", "--out", str(out), "--no-progress", *config,
        ]
    )  # fmt: skip


def test_train_cli_es_resumes_where_an_uninterrupted_run_ends(tmp_path) -> None:
    (tmp_path / "es.json").write_text(
        json.dumps({"terms": "gate", "trainer": "es", "es_sigma": 1.0, "es_batch_days": 1})
    )
    assert _train(tmp_path / "whole", 2, False, "--eval-every", "0") == 0
    assert _train(tmp_path / "split", 1, False, "--eval-every", "0") == 0
    assert _train(tmp_path / "split", 2, resume=True) == 0
    kind = agent_kind("guided-reopt")
    whole = kind.load_model(tmp_path / "whole" / "final_model.safetensors").policy.network
    split = kind.load_model(tmp_path / "split" / "final_model.safetensors").policy.network
    assert whole.linear_weights().tolist() == split.linear_weights().tolist()
    assert np.abs(whole.linear_weights()).sum() > 0.0
    metrics = json.loads((tmp_path / "whole" / "training_metrics.json").read_text())
    assert [day["es_updates"] for day in metrics["days"]] == [1, 2]


TAKE = {
    "terms": "take",
    "trainer": "es",
    "hidden": 8,
    "es_sigma": 2.0,
    "es_pairs": 2,
    "es_batch_days": 1,
    "es_step": 0.5,
    "es_scale": "reward_std",
}


def _take_vector(run) -> list[float]:
    model = agent_kind("guided-reopt").load_model(run / "final_model.safetensors")
    assert model.policy.network.terms == ("take",)
    return get_vector(model.policy.network, ("take",)).tolist()


@pytest.mark.slow
def test_train_cli_learns_the_take_term_resumes_and_reproduces_it_for_a_seed(tmp_path) -> None:
    (tmp_path / "es.json").write_text(json.dumps(TAKE))
    eval_args = ("--eval-every", "1", "--eval-days", "1", "--demand", "1.6,1.6")
    assert _train(tmp_path / "whole", 2, False, *eval_args) == 0
    assert _train(tmp_path / "split", 1, False, *eval_args) == 0
    assert _train(tmp_path / "split", 2, resume=True) == 0
    assert _train(tmp_path / "other", 2, False, *eval_args, "--seed", "5") == 0
    whole = _take_vector(tmp_path / "whole")
    assert np.abs(whole).sum() > 0.0  # two updates moved the take head
    assert whole == _take_vector(tmp_path / "split")
    assert whole != _take_vector(tmp_path / "other")
    metrics = json.loads((tmp_path / "whole" / "training_metrics.json").read_text())
    assert [day["es_updates"] for day in metrics["days"]] == [1, 2]
    run = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert run["days"]["demand_factors"] == [1.6, 1.6]


def test_the_selection_keeps_the_start_unless_an_iterate_beats_it(tmp_path) -> None:
    from rldispatch.scenarios.fleet_days import FleetDayDistribution
    from rldispatch.training.days import FleetDays
    from rldispatch.training.train import RunSettings, train

    distribution = FleetDayDistribution(fleet_sizes=(3,), demand_factors=(1.6, 1.6))
    days = FleetDays(distribution, selection=1)
    config = GuidedReoptConfig(**TAKE)
    settings = RunSettings(max_days=2, eval_every_days=1, checkpoint_every_days=0)
    result = train("guided-reopt", config, tmp_path / "run", days, settings, progress=False)
    selection = days.selection_days
    reopt = evaluate_policy(make_baseline("reopt"), selection, EnvConfig(max_drivers=3))[0]
    rewards = [row["reward"] for row in result.evaluations]
    assert rewards[0] == pytest.approx(reopt.reward)  # the start is reopt
    assert result.best_eval_reward == max(rewards)
    best = agent_kind("guided-reopt").load_model(result.best_model_path).policy.network
    if result.best_day == 0:
        assert not get_vector(best, ("take",)).any()
