"""The auto-tuner as a library: search space, a real small study with pruning, joining."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rldispatch.agents.dqn.config import DQNConfig, load_config
from rldispatch.training.train import train
from rldispatch.training.tuner import (
    SEARCH_SPACE,
    HeartbeatSettings,
    PrunerSettings,
    TuneError,
    TuneSettings,
    config_from_params,
    open_storage,
    open_study,
    run_worker,
    search_space_markdown,
    write_outputs,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tuning.md"

# Two small configs that learn within a Geneva day (about 130 decisions): same everything
# but the network, so their first evaluations differ.
SMALL = {
    "learning_rate": 1e-3,
    "gamma": 0.99,
    "batch_size": 32,
    "buffer_size": 10_000,
    "learning_starts_share": 0.1,
    "train_frequency": 1,
    "gradient_steps": 1,
    "target_update": "hard-500",
    "n_step": 1,
    "epsilon_end": 0.05,
    "epsilon_decay_share": 0.5,
    "hidden_sizes": "64",
    "max_grad_norm": 10.0,
    "dueling": False,
}
OTHER = {**SMALL, "hidden_sizes": "128-128", "dueling": True}


def _sample_values(parameter):
    if parameter.choices is not None:
        return list(parameter.choices)
    low, high = parameter.low, parameter.high
    return [int(low), int(high)] if parameter.integer else [low, high]


def test_search_space_has_fourteen_parameters_that_each_change_the_config():
    assert len(SEARCH_SPACE) == 14
    assert len({parameter.name for parameter in SEARCH_SPACE}) == 14
    for parameter in SEARCH_SPACE:
        configs = {
            config_from_params({parameter.name: value}, 10_000)
            for value in _sample_values(parameter)
        }
        # every value gives a valid DQNConfig, and the parameter really reaches the config
        assert len(configs) == len(_sample_values(parameter)), parameter.name


def test_target_update_sets_a_hard_period_or_a_soft_rate():
    hard = config_from_params({"target_update": "hard-2000"}, 10_000)
    soft = config_from_params({"target_update": "soft-0.02"}, 10_000)
    assert (hard.target_update_interval, hard.tau) == (2000, 1.0)
    assert (soft.target_update_interval, soft.tau) == (1, 0.02)


def test_untuned_fields_come_from_the_base_config():
    base = DQNConfig(reward_scale=0.5, epsilon_start=0.8)
    config = config_from_params(SMALL, 10_000, base)
    assert config.reward_scale == 0.5 and config.epsilon_start == 0.8
    assert config.hidden_sizes == (64,)


def test_step_parameters_scale_with_the_length_of_a_trial():
    settings = TuneSettings(preset="geneva", episodes=40, eval_days=1)
    assert 120 <= settings.steps_per_episode <= 145  # a Geneva day: 120-145 bookings
    config = config_from_params(
        {"learning_starts_share": 0.1, "epsilon_decay_share": 0.5}, settings.trial_steps
    )
    assert config.learning_starts == round(0.1 * settings.trial_steps)
    assert config.epsilon_decay_steps == round(0.5 * settings.trial_steps)


def test_docs_show_the_search_space_table_of_the_code():
    assert search_space_markdown() in DOCS.read_text(encoding="utf-8")


def test_heartbeat_grace_must_exceed_the_interval():
    with pytest.raises(TuneError, match="grace period"):
        HeartbeatSettings(interval_s=10, grace_s=10)


def test_small_study_completes_prunes_and_its_optimal_config_trains(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = TuneSettings(preset="geneva", episodes=2, eval_days=1, eval_every=1, seed=3)
    # Pruning is certain: every trial trains with the same seed, so a trial's result depends
    # on its parameters only. With trials A, B, A and a median pruner that starts after one
    # completed trial: B is pruned at its first evaluation if it trails A; if it leads, the
    # median of the completed A and B lies above A, and the second A is pruned.
    pruner = PrunerSettings("median", startup_trials=1, warmup_evals=0)
    opened = open_study(open_storage(url, HeartbeatSettings()), "small", settings, pruner)
    for params in (SMALL, OTHER, SMALL):
        opened.study.enqueue_trial(params)

    report = run_worker(opened, tmp_path / "out", n_trials=3)

    trials = opened.study.get_trials()
    assert [trial.number for trial in trials] == [0, 1, 2]
    assert report.trials["total"] == 3
    first_a, b, second_a = trials
    assert first_a.state == TrialState.COMPLETE
    assert first_a.intermediate_values.keys() == {1, 2}  # every evaluation was reported
    assert b.intermediate_values[1] != first_a.intermediate_values[1]
    assert second_a.intermediate_values[1] == first_a.intermediate_values[1]  # reproducible
    pruned = [trial for trial in (b, second_a) if trial.state == TrialState.PRUNED]
    assert len(pruned) == 1
    assert pruned[0].intermediate_values.keys() == {1}  # stopped at its first evaluation
    assert report.trials["pruned"] == 1 and report.trials["complete"] == 2

    summary = write_outputs(opened.study, settings, tmp_path / "out", url, report)
    assert summary["trials"]["pruned"] == 1 and summary["trials"]["complete"] == 2
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert summary["best_trial"]["number"] == best.number

    config = load_config(tmp_path / "out" / "optimal_config.json")
    assert config == config_from_params(best.params, settings.trial_steps, settings.base_config)
    result = train(
        config,
        tmp_path / "retrain",
        1,
        preset="geneva",
        eval_every=0,
        progress=False,
        tensorboard=False,
    )
    assert result.total_steps > 0 and result.final_model_path.exists()


def test_joining_a_study_with_other_settings_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(url, HeartbeatSettings())
    open_study(storage, "shared", TuneSettings(preset="classic", episodes=2, eval_days=1))
    joined = open_study(storage, "shared", TuneSettings(preset="classic", episodes=2, eval_days=1))
    assert not joined.created
    with pytest.raises(TuneError, match="episodes: study has 2, this worker 3"):
        open_study(storage, "shared", TuneSettings(preset="classic", episodes=3, eval_days=1))


def test_a_study_that_minimises_is_not_joined(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=url, study_name="other", direction="minimize")
    with pytest.raises(TuneError, match="minimises"):
        open_study(open_storage(url, HeartbeatSettings()), "other", TuneSettings(eval_days=1))
