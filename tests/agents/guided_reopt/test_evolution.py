"""Evolution strategies over guided-reopt's heads: the vector's layout, the antithetic step,
and the start (reopt) kept unless an iterate beats it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rldispatch.agents.guided_reopt.evolution import (
    EvolutionSettings,
    antithetic_step,
    evolve,
    get_vector,
    set_vector,
)
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import evaluate_policy

DAY = geneva_day(5, 3)


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


def test_the_antithetic_step_follows_the_better_side() -> None:
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    level = antithetic_step(np.array([5.0, 5.0]), np.array([5.0, 5.0]), directions, 0.2, 0.5)
    assert not level.any()
    step = antithetic_step(np.array([10.0, 5.0]), np.array([0.0, 5.0]), directions, 0.2, 0.5)
    assert step[0] > 0 and step[1] == 0.0


def test_settings_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match="sigma"):
        EvolutionSettings(sigma=0.0)
    with pytest.raises(ValueError, match="heads"):
        EvolutionSettings(heads=("arcs",))
    with pytest.raises(ValueError, match="pairs"):
        EvolutionSettings(pairs=0)


def test_a_run_keeps_the_start_unless_an_iterate_beats_it_on_the_selection_days() -> None:
    torch.manual_seed(0)
    network = TermNetwork(hidden=4, terms=("value",))
    settings = EvolutionSettings(
        heads=("value",), sigma=2.0, pairs=1, days_per_iteration=1, iterations=2, select_every=1
    )
    result = evolve(network, lambda k: [DAY], [DAY], settings)
    reopt = evaluate_policy(make_baseline("reopt"), [DAY], EnvConfig(max_drivers=3))[0]
    assert result.start_selection_reward == pytest.approx(reopt.reward)
    assert len(result.history) == 2
    selected = [row["selection_reward"] for row in result.history]
    assert result.best_selection_reward == max([result.start_selection_reward, *selected])
    if result.best_iteration == 0:
        assert not result.best_vector.any()
    assert not get_vector(network, ("value",)).any()  # the caller's network is left as it was
