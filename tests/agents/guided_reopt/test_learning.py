"""Learning through the solver: Fenchel-Young steps on labelled states."""

from __future__ import annotations

import numpy as np
import torch

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.kind import GuidedReoptLearner
from rldispatch.agents.guided_reopt.labels import StateLabel
from rldispatch.agents.guided_reopt.learning import disagreement, fenchel_young_step
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.fleet_days import geneva_day


def visited_states(config: GuidedReoptConfig) -> tuple[GuidedReoptLearner, DispatchEnv]:
    """A learner that played (and labelled) one small day with the untrained network."""
    day = geneva_day(3, 3)
    env = DispatchEnv(preset=None, scenarios=[day], config=EnvConfig(max_drivers=3))
    env.reset(seed=0, options={"scenario": day})
    learner = GuidedReoptLearner(config, env, seed=0)
    learner.start_day(env)
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(learner.act(env))
    learner.end_day(env)
    return learner, env


def test_the_loss_falls_on_a_tiny_fixed_dataset() -> None:
    """Labels that leave every booking open: the steps lower the prizes until the solver
    agrees with them on states it was trained on."""
    config = GuidedReoptConfig(
        terms="prize",
        label_every=6,
        label_solution_limit=5,
        updates_per_day=0,
        learning_rate=0.05,
        term_scale=40.0,
        noise=0.0,
    )
    learner, env = visited_states(config)
    states = learner.states[:3]
    assert states
    for state in states:
        state.label = StateLabel((), (), {}, tuple(-1 for _ in range(env.sim.n_drivers)))
    reward = env.config.reward
    before = disagreement(learner.acting, learner.network, states, reward)
    rng = np.random.default_rng(0)
    for _ in range(6):
        for state in states:
            fenchel_young_step(
                learner.acting, learner.network, learner.optimizer, state, reward, 0.0, rng
            )
    after = disagreement(learner.acting, learner.network, states, reward)
    assert after < before


def test_a_training_day_labels_states_and_steps() -> None:
    config = GuidedReoptConfig(label_every=6, label_solution_limit=5, updates_per_day=3)
    learner, _ = visited_states(config)
    assert learner.states and all(state.label is not None for state in learner.states)
    assert learner.updates == 3
    assert learner.labeller.solved == len(learner.states)
    weights = torch.cat([p.detach().flatten() for p in learner.network.parameters()])
    assert torch.isfinite(weights).all()
