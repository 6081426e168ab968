"""The ``guided-reopt`` kind's tuner search space: the learning of the terms, not the solver
(whose budget stays ``reopt``'s)."""

from __future__ import annotations

from rldispatch.agents.search_space import Hyperparameter

GUIDED_REOPT_SEARCH_SPACE: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        "terms",
        "terms",
        "the learned terms",
        choices=("prize,value", "prize", "value", "gate", "all"),
    ),
    Hyperparameter("hidden", "hidden", "width of each head's hidden layers", choices=(16, 32, 64)),
    Hyperparameter("term_scale", "scale", "bound of each term (reward units)", low=2.0, high=20.0),
    Hyperparameter("learning_rate", "lr", "Adam step size", low=3e-5, high=3e-3, log=True),
    Hyperparameter(
        "noise",
        "noise",
        "perturbation of the Fenchel-Young loss (reward units)",
        low=0.0,
        high=5.0,
    ),
    Hyperparameter("label_every", "label_every", "re-plans per labelled state", choices=(4, 8, 16)),
    Hyperparameter(
        "updates_per_day", "updates", "gradient steps per training day", choices=(16, 48, 96)
    ),
)
