"""What a tuning trial is: each kind's search space, the days, the budget, shared settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.kinds import agent_kind, kind_names
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.search_space import search_space_markdown
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.scenarios.presets import TUNING_SEEDS
from rldispatch.training.days import FleetDays, PresetDays
from rldispatch.training.tuning_settings import (
    HeartbeatSettings,
    PrunerSettings,
    TuneError,
    TuneSettings,
    scales_with_trial_length,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tuning.md"
SMALL_FLEETS = FleetDays(FleetDayDistribution(fleet_sizes=(5, 6)))


def _sample_values(parameter):
    if parameter.choices is not None:
        return list(parameter.choices)
    low, high = parameter.low, parameter.high
    return [int(low), int(high)] if parameter.integer else [low, high]


@pytest.mark.parametrize("agent", ["pairwise", "dqn"])
def test_each_kind_has_fourteen_parameters_that_each_change_its_config(agent):
    settings = TuneSettings(agent=agent, days=PresetDays("geneva"), max_days=10, eval_days=1)
    space = settings.space
    assert len(space) == 14
    assert len({parameter.name for parameter in space}) == 14
    for parameter in space:
        configs = {
            settings.config_for({parameter.name: value}) for value in _sample_values(parameter)
        }
        # every value gives a valid config of the kind, and really reaches it
        assert all(isinstance(config, settings.kind.config_type) for config in configs)
        assert len(configs) == len(_sample_values(parameter)), parameter.name


def test_the_two_kinds_are_tunable_and_pairwise_comes_first():
    assert kind_names()[:2] == ["pairwise", "dqn"]
    assert TuneSettings(max_days=1, eval_days=1).agent == "pairwise"


@pytest.mark.parametrize("agent", ["pairwise", "dqn", "guided-reopt"])
def test_docs_show_the_search_space_table_of_each_kind(agent):
    table = search_space_markdown(agent_kind(agent).search_space())
    assert table in DOCS.read_text(encoding="utf-8")


def test_untuned_fields_come_from_the_base_config():
    base = PairwiseConfig(buffer_size=7_000, epsilon_decay_steps=900)
    settings = TuneSettings(days=SMALL_FLEETS, max_days=2, eval_days=1, base_config=base)
    config = settings.config_for({"hidden": 32, "known_reward_weight": 0.5})
    assert (config.buffer_size, config.epsilon_decay_steps) == (7_000, 900)
    assert (config.hidden, config.known_reward_weight) == (32, 0.5)


def test_a_base_config_of_another_kind_is_refused():
    with pytest.raises(TuneError, match="a pairwise study takes a PairwiseConfig"):
        TuneSettings(agent="pairwise", max_days=1, eval_days=1, base_config=DQNConfig())


def test_dqn_target_update_sets_a_hard_period_or_a_soft_rate():
    settings = TuneSettings(agent="dqn", max_days=10, eval_days=1)
    hard = settings.config_for({"target_update": "hard-2000"})
    soft = settings.config_for({"target_update": "soft-0.02"})
    assert (hard.target_update_interval, hard.tau) == (2000, 1.0)
    assert (soft.target_update_interval, soft.tau) == (1, 0.02)


def test_dqn_step_parameters_scale_with_the_days_of_a_trial():
    settings = TuneSettings(agent="dqn", days=PresetDays("geneva"), max_days=40, eval_days=1)
    assert 120 <= settings.steps_per_day <= 145  # a Geneva day: 120-145 bookings
    assert settings.trial_steps == 40 * settings.steps_per_day
    config = settings.config_for({"learning_starts_share": 0.1, "epsilon_decay_share": 0.5})
    assert config.learning_starts == round(0.1 * settings.trial_steps)
    assert config.epsilon_decay_steps == round(0.5 * settings.trial_steps)
    scaled = [p.name for p in settings.space if scales_with_trial_length(p)]
    assert scaled == ["learning_starts_share", "epsilon_decay_share"]


def test_trials_are_scored_on_tuning_days_of_each_kinds_own_source():
    pairwise = TuneSettings(agent="pairwise", max_days=5)
    assert pairwise.to_dict()["days"]["source"] == "fleets"
    assert len(pairwise.days.selection_days) == 16
    fleet_seeds = [int(day.name.rsplit("-", 1)[1]) for day in pairwise.days.selection_days]
    assert fleet_seeds == list(TUNING_SEEDS[:16])

    dqn = TuneSettings(agent="dqn", max_days=5)
    assert dqn.to_dict()["days"] == {"source": "preset", "preset": "geneva", "selection": 5}
    assert [day.name for day in dqn.days.selection_days] == [
        f"geneva-{seed}" for seed in TUNING_SEEDS[:5]
    ]


def test_the_callers_days_keep_their_own_selection_days():
    days = PresetDays("classic", selection=2)
    before = [day.name for day in days.selection_days]
    settings = TuneSettings(agent="dqn", days=days, max_days=5, eval_days=3)
    assert [day.name for day in days.selection_days] == before
    assert [day.name for day in settings.days.selection_days] == [
        f"classic-{seed}" for seed in TUNING_SEEDS[:3]
    ]


def test_a_budget_in_minutes_alone_suits_a_space_without_shares_of_the_trial():
    settings = TuneSettings(agent="pairwise", max_minutes=2.5, eval_days=1)
    assert settings.max_days is None and settings.max_seconds == 150.0
    assert settings.eval_every == 10 and settings.trial_steps is None
    assert settings.budget_text() == "2.5 minutes of training"
    with pytest.raises(TuneError, match="--minutes alone: the dqn search space sets"):
        TuneSettings(agent="dqn", max_minutes=2.5, eval_days=1)
    both = TuneSettings(agent="dqn", max_days=20, max_minutes=2.5, eval_days=1)
    assert (
        both.eval_every == 4 and both.budget_text() == "20 training days or 2.5 minutes of training"
    )


def test_default_budget_is_thirty_days_evaluated_every_sixth():
    settings = TuneSettings(agent="dqn", eval_days=1)
    assert (settings.max_days, settings.max_minutes, settings.eval_every) == (30, None, 6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_days": 0}, "days: must be at least 1"),
        ({"max_minutes": -1.0}, "minutes: must be > 0"),
        ({"eval_days": 0}, "eval_days: must be at least 1"),
        ({"eval_every": 0}, "eval_every: must be at least 1"),
        ({"agent": "ppo"}, "unknown kind 'ppo'"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(options, message):
    with pytest.raises(TuneError, match=message):
        TuneSettings(**{"max_days": 5, "eval_days": 1, **options})


@pytest.mark.parametrize("agent", ["pairwise", "dqn"])
def test_settings_stored_in_a_study_read_back_the_same(agent):
    days = SMALL_FLEETS if agent == "pairwise" else PresetDays("classic")
    settings = TuneSettings(agent=agent, days=days, max_days=7, eval_days=2, eval_every=3, seed=4)
    stored = settings.to_dict()
    assert stored["agent"] == agent
    assert TuneSettings.from_dict(stored).to_dict() == stored


def test_settings_of_a_study_made_before_kinds_read_as_a_dqn_study():
    old = TuneSettings(agent="dqn", max_days=3, eval_days=2).to_dict()
    stored = {
        "preset": "geneva",
        "episodes": 3,
        "eval_days": old["eval_days"],
        "eval_every": 1,
        "seed": 0,
        "base_config": DQNConfig().to_dict(),
        "search_space": old["search_space"],
    }
    settings = TuneSettings.from_dict(stored)
    assert (settings.agent, settings.max_days, settings.eval_days) == ("dqn", 3, 2)
    assert settings.to_dict()["eval_days"] == old["eval_days"]


def test_a_study_with_another_search_space_is_not_read():
    stored = TuneSettings(agent="pairwise", max_days=3, eval_days=1).to_dict()
    stored["search_space"] = stored["search_space"][:-1]
    with pytest.raises(TuneError, match="another pairwise search space"):
        TuneSettings.from_dict(stored)


def test_pruners_are_built_for_a_budget_in_days_or_minutes():
    days = TuneSettings(agent="pairwise", max_days=20, eval_days=1)
    minutes = TuneSettings(agent="pairwise", max_minutes=3.0, eval_days=1)
    median = PrunerSettings("median", startup_trials=2, warmup_evals=1).build(days)
    assert median._n_warmup_steps == 5  # never at the first periodic evaluation (day 4)
    assert PrunerSettings("hyperband").build(minutes) is not None
    with pytest.raises(TuneError, match="unknown pruner 'best'"):
        PrunerSettings("best").build(days)


def test_heartbeat_grace_must_exceed_the_interval():
    with pytest.raises(TuneError, match="grace period"):
        HeartbeatSettings(interval_s=10, grace_s=10)


def test_a_studys_reward_weights_are_stored_only_when_they_are_not_the_defaults():
    from rldispatch.rewards import RewardConfig

    days = PresetDays("geneva", selection=0)
    plain = TuneSettings(agent="dqn", days=days, max_days=2, eval_days=1)
    assert "reward" not in plain.to_dict()  # earlier studies still match
    doubled = RewardConfig(late_pickup_penalty=10.0)
    weighted = TuneSettings(agent="dqn", days=days, max_days=2, eval_days=1, reward=doubled)
    assert weighted.to_dict()["reward"]["late_pickup_penalty"] == 10.0
    assert TuneSettings.from_dict(weighted.to_dict()).reward == doubled


def test_a_studys_uncertain_day_is_stored_only_when_something_is_drawn():
    from rldispatch.sim.noise import Uncertainty

    days = PresetDays("geneva", selection=0)
    certain = TuneSettings(agent="dqn", days=days, max_days=2, eval_days=1, uncertainty=None)
    assert "uncertainty" not in certain.to_dict()  # earlier studies still match
    zero = TuneSettings(agent="dqn", days=days, max_days=2, eval_days=1, uncertainty=Uncertainty())
    assert "uncertainty" not in zero.to_dict()
    noise = Uncertainty(travel_cv=0.2, no_show_rate=0.05, service_delay_cv=0.1, seed=3)
    noisy = TuneSettings(agent="dqn", days=days, max_days=2, eval_days=1, uncertainty=noise)
    assert noisy.to_dict()["uncertainty"]["no_show_rate"] == 0.05
    assert TuneSettings.from_dict(noisy.to_dict()).uncertainty == noise


def test_days_on_a_road_network_keep_their_source_and_select_on_its_roads(tmp_path: Path):
    from rldispatch.training.days import RoadNetworkDays, days_from_description

    roads = str(tmp_path / "city.osm.pbf")  # named only: no day is played here
    days = RoadNetworkDays(PresetDays("geneva", selection=2), roads)
    assert days.day(3).travel.road_network == roads
    assert days.day(3).bookings == PresetDays("geneva").day(3).bookings
    again = days_from_description(days.describe())
    assert isinstance(again, RoadNetworkDays) and again.describe() == days.describe()
    settings = TuneSettings(agent="pairwise", days=days, max_days=10, eval_days=3)
    assert isinstance(settings.days, RoadNetworkDays)
    assert len(settings.days.selection_days) == 3
    assert all(day.travel.road_network == roads for day in settings.days.selection_days)
    assert [day.name for day in settings.days.selection_days] == [
        f"geneva-{seed}" for seed in TUNING_SEEDS[:3]
    ]
