"""The commit gate learned by evolution strategies: a zero linear gate is reopt, an update
moves the weights reproducibly, the model file keeps them, and a resumed run ends where an
uninterrupted one does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rldispatch.agents.config_fields import ConfigError
from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.es_learning import EsGateLearner, es_direction, gate_policy
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
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


def _one_day(seed: int, config: GuidedReoptConfig = ES) -> EsGateLearner:
    env = DispatchEnv(preset=None, scenarios=[DAY], config=CONFIG)
    learner = EsGateLearner(config, env, seed)
    env.reset(options={"scenario": DAY})
    learner.start_day(env)
    terminated = env.sim.done
    while not terminated:
        _, reward, terminated, _, _ = env.step(learner.act(env))
    record = learner.end_day(env)
    assert record["es_updates"] == 1
    return learner


def test_an_es_update_moves_the_weights_reproducibly() -> None:
    first, again, other = _one_day(3), _one_day(3), _one_day(4)
    assert np.abs(first.weights).sum() > 0.0
    assert first.weights.tolist() == again.weights.tolist()
    assert first.weights.tolist() != other.weights.tolist()
    assert first.reopt_reward == {
        DAY.name: evaluate_policy(make_baseline("reopt"), [DAY], CONFIG)[0].reward
    }


def test_two_worker_processes_give_the_weights_of_one() -> None:
    two = GuidedReoptConfig(**{**ES.to_dict(), "es_jobs": 2})
    assert _one_day(3, two).weights.tolist() == _one_day(3).weights.tolist()


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


def test_the_model_file_keeps_the_gate_weights(tmp_path) -> None:
    learner = _one_day(3)
    path = learner.save_model(tmp_path / "gate.safetensors", CONFIG, "geneva", {})
    model = agent_kind("guided-reopt").load_model(path)
    assert model.policy.network.linear_gate
    assert model.policy.network.linear_weights().tolist() == learner.weights.tolist()
    assert model.training_summary["gate_weights"]["bias"] == learner.weights[0]
    played = evaluate_policy(model.policy, [DAY], CONFIG)[0]
    assert played == evaluate_policy(learner.policy("gate"), [DAY], CONFIG)[0]


def test_es_needs_the_gate_alone() -> None:
    with pytest.raises(ConfigError, match="trainer"):
        GuidedReoptConfig(trainer="es")


def _train(out, days: int, resume: bool = False) -> int:
    config = ["--resume"] if resume else ["--config", str(out.parent / "es.json")]
    return main(
        [
            "train", "--agent", "guided-reopt", "--fleets", "3", "--days", str(days),
            "--eval-every", "0", "--checkpoint-every", "1", "--out", str(out), "--no-progress",
            *config,
        ]
    )  # fmt: skip


def test_train_cli_es_resumes_where_an_uninterrupted_run_ends(tmp_path) -> None:
    (tmp_path / "es.json").write_text(
        json.dumps({"terms": "gate", "trainer": "es", "es_sigma": 1.0, "es_batch_days": 1})
    )
    assert _train(tmp_path / "whole", 2) == 0
    assert _train(tmp_path / "split", 1) == 0
    assert _train(tmp_path / "split", 2, resume=True) == 0
    kind = agent_kind("guided-reopt")
    whole = kind.load_model(tmp_path / "whole" / "final_model.safetensors").policy.network
    split = kind.load_model(tmp_path / "split" / "final_model.safetensors").policy.network
    assert whole.linear_weights().tolist() == split.linear_weights().tolist()
    assert np.abs(whole.linear_weights()).sum() > 0.0
    metrics = json.loads((tmp_path / "whole" / "training_metrics.json").read_text())
    assert [day["es_updates"] for day in metrics["days"]] == [1, 2]
