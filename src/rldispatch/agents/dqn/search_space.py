"""The DQN kind's tuner search space: 14 hyperparameters (``docs/tuning.md`` prints it)."""

from __future__ import annotations

from typing import Any

from rldispatch.agents.search_space import Hyperparameter, share_of_steps


def hidden_sizes_from_label(label: str) -> tuple[int, ...]:
    """``"256-128"`` -> ``(256, 128)``: layer widths joined by dashes."""
    return tuple(int(width) for width in label.split("-"))


def target_update_fields(label: str, trial_steps: int = 0) -> dict[str, Any]:
    """``"hard-2000"``: copy the online network every 2000 env steps; ``"soft-0.01"``: move
    the target 1% of the way towards it after every env step (Polyak averaging)."""
    kind, amount = label.split("-", 1)
    if kind == "hard":
        return {"target_update_interval": int(amount), "tau": 1.0}
    return {"target_update_interval": 1, "tau": float(amount)}


DQN_SEARCH_SPACE: tuple[Hyperparameter, ...] = (
    Hyperparameter("learning_rate", "lr", "Adam step size", low=1e-5, high=3e-3, log=True),
    Hyperparameter(
        "gamma",
        "gamma",
        "discount per decision (a Geneva day is ~140 decisions, a classic day ~300)",
        choices=(0.9, 0.95, 0.98, 0.99, 0.995, 0.999),
    ),
    Hyperparameter(
        "batch_size", "batch", "transitions per gradient step", choices=(32, 64, 128, 256)
    ),
    Hyperparameter(
        "buffer_size",
        "buffer",
        "replay capacity, transitions",
        choices=(10_000, 30_000, 100_000, 300_000),
    ),
    Hyperparameter(
        "learning_starts_share",
        "starts",
        "`learning_starts`: transitions collected before the first gradient step, as a share "
        "of the trial's training steps",
        choices=(0.01, 0.03, 0.1, 0.2),
        to_config=share_of_steps("learning_starts"),
    ),
    Hyperparameter(
        "train_frequency",
        "train_freq",
        "env steps between two rounds of gradient steps",
        choices=(1, 2, 4, 8),
    ),
    Hyperparameter("gradient_steps", "grad_steps", "gradient steps per round", choices=(1, 2, 4)),
    Hyperparameter(
        "target_update",
        "target",
        "hard copy every N env steps, or soft (Polyak) update with rate tau every step",
        choices=("hard-500", "hard-2000", "hard-8000", "soft-0.005", "soft-0.02"),
        to_config=target_update_fields,
    ),
    Hyperparameter(
        "n_step",
        "n_step",
        "n-step returns (replaces epsilon start: see docs/tuning.md)",
        choices=(1, 3, 5),
    ),
    Hyperparameter("epsilon_end", "eps_end", "exploration rate after the decay", low=0.0, high=0.1),
    Hyperparameter(
        "epsilon_decay_share",
        "eps_decay",
        "`epsilon_decay_steps`: length of the linear decay from epsilon start to epsilon end, "
        "as a share of the trial's training steps",
        low=0.05,
        high=1.0,
        log=True,
        to_config=share_of_steps("epsilon_decay_steps"),
    ),
    Hyperparameter(
        "hidden_sizes",
        "hidden",
        "hidden layer widths of the Q-network (512-256-128 is the first prototype's)",
        choices=("64", "128-128", "256-128", "256-256", "512-256-128"),
        to_config=lambda label, _steps: {"hidden_sizes": hidden_sizes_from_label(label)},
    ),
    Hyperparameter(
        "max_grad_norm",
        "clip",
        "gradient clip: largest global L2 norm of a gradient step",
        low=0.3,
        high=30.0,
        log=True,
    ),
    Hyperparameter(
        "dueling", "dueling", "dueling head (state value + advantages)", choices=(False, True)
    ),
)
