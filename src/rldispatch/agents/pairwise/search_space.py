"""The pairwise kind's tuner search space: 14 hyperparameters (``docs/tuning.md`` prints it).

It covers what the ablation in ``docs/pairwise.md`` found matters (the shaping and
known-reward weights) and the network and Double-DQN settings around them.
"""

from __future__ import annotations

from rldispatch.agents.search_space import Hyperparameter

PAIRWISE_SEARCH_SPACE: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        "shaping_weight",
        "shaping",
        "weight of the shaping that charges lateness and cancellations to the decision that "
        "causes them",
        low=0.25,
        high=2.0,
    ),
    Hyperparameter(
        "known_reward_weight",
        "known",
        "weight of the known part of each action's reward in its score",
        low=0.25,
        high=2.0,
    ),
    Hyperparameter("hidden", "hidden", "width of the per-pair layers", choices=(32, 64, 128)),
    Hyperparameter(
        "head_hidden", "head", "width of the state head (value, waiting)", choices=(32, 64, 128)
    ),
    Hyperparameter(
        "candidates_per_booking",
        "candidates",
        "drivers scored per visible booking",
        low=3,
        high=10,
        integer=True,
    ),
    Hyperparameter("learning_rate", "lr", "Adam step size", low=1e-5, high=1e-3, log=True),
    Hyperparameter("gamma", "gamma", "discount per decision", choices=(0.8, 0.85, 0.9, 0.95, 0.97)),
    Hyperparameter("n_step", "n_step", "n-step returns", choices=(1, 2, 3, 5)),
    Hyperparameter(
        "tau", "tau", "target averaging rate per gradient step", low=1e-3, high=0.05, log=True
    ),
    Hyperparameter(
        "epsilon_start", "eps_start", "exploration rate at the start", low=0.0, high=0.2
    ),
    Hyperparameter(
        "epsilon_end", "eps_end", "exploration rate after the decay", low=0.0, high=0.05
    ),
    Hyperparameter(
        "batch_size", "batch", "decisions per gradient step", choices=(32, 64, 128, 256)
    ),
    Hyperparameter(
        "train_frequency",
        "train_freq",
        "decisions between gradient steps",
        choices=(1, 2, 4, 8, 16),
    ),
    Hyperparameter(
        "reward_scale", "scale", "reward scale before learning", low=0.05, high=1.0, log=True
    ),
)
