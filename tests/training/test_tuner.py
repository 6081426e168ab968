"""The auto-tuner as a library: real small studies with pruning, for each agent kind."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.training.days import FleetDays, PresetDays
from rldispatch.training.train import RunSettings, train
from rldispatch.training.tuner import run_worker
from rldispatch.training.tuning_report import write_outputs
from rldispatch.training.tuning_settings import HeartbeatSettings, PrunerSettings, TuneSettings
from rldispatch.training.tuning_storage import open_storage, open_study

SMALL_FLEETS = FleetDayDistribution(fleet_sizes=(5, 6))
# Small pairwise networks that learn from a day of 5-6 drivers (about 100 decisions; a day
# is stored once it is over, so the second day is the first that learns); B moves its
# evaluated (target) network faster and weighs the known reward less.
PAIRWISE_A = {
    "shaping_weight": 1.0,
    "known_reward_weight": 1.0,
    "hidden": 32,
    "head_hidden": 32,
    "candidates_per_booking": 3,
    "learning_rate": 1e-3,
    "gamma": 0.9,
    "n_step": 3,
    "tau": 0.01,
    "epsilon_start": 0.1,
    "epsilon_end": 0.02,
    "batch_size": 32,
    "train_frequency": 2,
    "reward_scale": 0.2,
}
PAIRWISE_B = {**PAIRWISE_A, "known_reward_weight": 0.25, "tau": 0.05, "train_frequency": 1}
PAIRWISE_BASE = PairwiseConfig(learning_starts=50, buffer_size=5_000, epsilon_decay_steps=200)


def test_a_small_pairwise_study_prunes_and_its_optimal_config_trains(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = TuneSettings(
        agent="pairwise",
        days=FleetDays(SMALL_FLEETS),
        max_days=3,
        eval_days=1,
        eval_every=2,
        seed=3,
        base_config=PAIRWISE_BASE,
    )
    # Pruning is certain: every trial trains with the same seed, so a trial's result depends
    # on its parameters only. With trials A, B, A and a median pruner that starts after one
    # completed trial: B is pruned at day 2 if it trails A there; if it leads, the median of
    # the completed A and B lies above A at day 2, and the second A is pruned there.
    pruner = PrunerSettings("median", startup_trials=1, warmup_evals=0)
    opened = open_study(open_storage(url, HeartbeatSettings()), "small", settings, pruner)
    for params in (PAIRWISE_A, PAIRWISE_B, PAIRWISE_A):
        opened.study.enqueue_trial(params)

    report = run_worker(opened, tmp_path / "out", n_trials=3)

    trials = opened.study.get_trials()
    assert [trial.number for trial in trials] == [0, 1, 2]
    first_a, b, second_a = trials
    assert first_a.state == TrialState.COMPLETE
    # every periodic evaluation and the last one were reported, the one before training was
    # kept aside
    assert first_a.intermediate_values.keys() == {2, 3}
    assert isinstance(first_a.user_attrs["start_reward"], float)
    assert first_a.value == first_a.intermediate_values[3]  # the objective: the last one
    assert b.intermediate_values[2] != first_a.intermediate_values[2]
    assert second_a.intermediate_values[2] == first_a.intermediate_values[2]  # reproducible
    pruned = [trial for trial in (b, second_a) if trial.state == TrialState.PRUNED]
    assert len(pruned) == 1
    assert pruned[0].intermediate_values.keys() == {2}  # stopped before its last day
    assert pruned[0].user_attrs["pruned_at_day"] == 2
    assert report.trials["pruned"] == 1 and report.trials["complete"] == 2

    summary = write_outputs(opened.study, settings, tmp_path / "out", url, report)
    assert summary["agent"] == "pairwise" and summary["settings"]["agent"] == "pairwise"
    assert summary["trials"]["pruned"] == 1 and summary["trials"]["complete"] == 2
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert summary["best_trial"]["number"] == best.number

    config = PairwiseConfig.load(tmp_path / "out" / "optimal_config.json")
    assert config == settings.config_for(best.params)
    assert config.learning_starts == PAIRWISE_BASE.learning_starts  # untuned: from the base
    days = FleetDays(SMALL_FLEETS, selection=1)
    result = train(
        "pairwise",
        config,
        tmp_path / "retrain",
        days,
        RunSettings(max_days=1, eval_every_days=0),
        progress=False,
        tensorboard=False,
    )
    assert result.decisions > 0 and result.final_model_path.exists()


def test_the_dqn_kind_still_tunes_with_steps_scaled_to_the_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    base = DQNConfig(buffer_size=5_000)
    settings = TuneSettings(
        agent="dqn", days=PresetDays("geneva"), max_days=1, eval_days=1, base_config=base
    )
    opened = open_study(open_storage(url, HeartbeatSettings()), "flat", settings)
    opened.study.enqueue_trial({"hidden_sizes": "64", "learning_starts_share": 0.2})

    report = run_worker(opened, tmp_path / "out", n_trials=2)

    assert report.trials["complete"] == 2
    first = opened.study.trials[0]
    assert first.user_attrs["days"] == 1 and first.user_attrs["decisions"] > 0
    summary = write_outputs(opened.study, settings, tmp_path / "out", url, report, plots=False)
    assert summary["agent"] == "dqn"
    config = DQNConfig.load(tmp_path / "out" / "optimal_config.json")
    best = opened.study.best_trial
    assert config == settings.config_for(best.params)
    share = best.params["learning_starts_share"]
    assert config.learning_starts == round(share * settings.trial_steps)


def test_a_trial_with_a_budget_in_minutes_stops_on_time(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    settings = TuneSettings(
        agent="pairwise",
        days=FleetDays(SMALL_FLEETS),
        max_minutes=0.02,
        eval_days=1,
        eval_every=1,
        base_config=PAIRWISE_BASE,
    )
    opened = open_study(open_storage(url, HeartbeatSettings()), "timed", settings)
    opened.study.enqueue_trial(PAIRWISE_A)

    run_worker(opened, tmp_path / "out", n_trials=1)

    (trial,) = opened.study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["stopped_by_time_limit"] is True
    assert trial.value == trial.user_attrs["final_eval"]["reward"]


def test_a_trial_whose_config_is_invalid_fails_and_the_worker_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    small_buffer = PairwiseConfig(buffer_size=200, learning_starts=10, batch_size=64)
    settings = TuneSettings(
        agent="pairwise",
        days=FleetDays(SMALL_FLEETS),
        max_days=1,
        eval_days=1,
        base_config=small_buffer,
    )
    opened = open_study(open_storage(url, HeartbeatSettings()), "bad", settings)
    opened.study.enqueue_trial({**PAIRWISE_A, "batch_size": 256})  # larger than the buffer
    opened.study.enqueue_trial(PAIRWISE_A)

    report = run_worker(opened, tmp_path / "out", n_trials=2)

    states = [trial.state for trial in opened.study.trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]
    assert "pairwise.batch_size: 256 is larger than" in opened.study.trials[0].user_attrs["error"]
    assert report.trials["fail"] == 1
    assert optuna.load_study(study_name="bad", storage=url).best_trial.number == 1
