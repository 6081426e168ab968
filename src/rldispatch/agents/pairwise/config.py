"""Every hyperparameter of the pairwise agent in one validated, frozen object (steps are
decisions). ``docs/pairwise.md`` explains the known reward and the shaping weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rldispatch.agents.config_fields import ConfigError, HyperparameterConfig, hyperparameter


@dataclass(frozen=True)
class PairwiseConfig(HyperparameterConfig):
    """Hyperparameters of the pairwise Double-DQN agent and its learning schedule."""

    prefix: ClassVar[str] = "pairwise"

    hidden: int = hyperparameter("width of the per-pair layers", 64, kind="int", low=1)
    head_hidden: int = hyperparameter(
        "width of the state head (state value and waiting)", 64, kind="int", low=1
    )
    candidates_per_booking: int = hyperparameter(
        "drivers scored per visible booking (its cheapest insertions)", 6, kind="int", low=1
    )
    learning_rate: float = hyperparameter(
        "Adam step size", 1e-4, kind="float", low=0.0, high=1.0, low_open=True
    )
    gamma: float = hyperparameter("discount factor per decision", 0.9, low=0.0, high=1.0)
    n_step: int = hyperparameter(
        "n-step returns: bootstrap after this many decisions", 3, kind="int", low=1
    )
    batch_size: int = hyperparameter("decisions per gradient step", 256, kind="int", low=1)
    buffer_size: int = hyperparameter(
        "replay buffer capacity, in decisions", 50_000, kind="int", low=1
    )
    learning_starts: int = hyperparameter(
        "decisions in the replay buffer before gradient steps begin", 1_000, kind="int", low=0
    )
    train_frequency: int = hyperparameter(
        "decisions between two gradient steps", 16, kind="int", low=1
    )
    tau: float = hyperparameter(
        "target update: target <- tau * online + (1 - tau) * target, after every gradient "
        "step; the target network is the one evaluated and saved",
        0.005,
        low=0.0,
        high=1.0,
        low_open=True,
    )
    double_dqn: bool = hyperparameter(
        "Double DQN: the online network picks the next action, the target network scores it",
        True,
        kind="bool",
    )
    max_grad_norm: float = hyperparameter(
        "clip the gradient's global L2 norm to this", 10.0, low=0.0, low_open=True
    )
    epsilon_start: float = hyperparameter(
        "exploration rate at the first decision", 0.05, low=0.0, high=1.0
    )
    epsilon_end: float = hyperparameter(
        "exploration rate once the decay is over", 0.02, low=0.0, high=1.0
    )
    epsilon_decay_steps: int = hyperparameter(
        "decisions over which epsilon falls linearly from start to end", 20_000, kind="int", low=0
    )
    reward_scale: float = hyperparameter(
        "rewards are multiplied by this before learning; reported rewards never are",
        0.2,
        low=0.0,
        low_open=True,
    )
    shaping_weight: float = hyperparameter(
        "weight of the shaping that charges a late pickup (its own or one pushed back in the "
        "plan) and a cancellation to the decision that causes it (0: the env's reward as it "
        "comes)",
        1.0,
        low=0.0,
        high=10.0,
    )
    known_reward_weight: float = hyperparameter(
        "weight of the part of each action's reward known when it is chosen, added to the "
        "network's scores (0: the network learns everything)",
        1.0,
        low=0.0,
        high=10.0,
    )

    imitation_days: int = hyperparameter(
        "training days whose hindsight plans the network imitates (DAgger) before the "
        "reinforcement learning starts (0: none); the time counts in the run's budget",
        0,
        kind="int",
        low=0,
    )
    imitation_rounds: int = hyperparameter(
        "DAgger rounds over the imitation days", 2, kind="int", low=1
    )
    imitation_time_limit_s: float = hyperparameter(
        "the hindsight solver's time per imitation day, in seconds", 3.0, low=0.0, low_open=True
    )
    imitation_target: str = hyperparameter(
        "what is imitated: 'driver' ranks each booking's candidates toward its planned driver; "
        "'action' ranks the state's choices toward the plan's action (booking, driver or wait)",
        "driver",
        kind="choice",
        choices=("driver", "action"),
    )
    imitation_search: str = hyperparameter(
        "the expert imitated: 'local' improves the routes the network played by local search "
        "with every booking known; 'hindsight' is the hindsight solver's plan; 'lookahead' "
        "plays the network's best pairs on in copies of the day that know only the bookings "
        "known then, and picks the one that ends best",
        "local",
        kind="choice",
        choices=("local", "hindsight", "lookahead"),
    )
    imitation_candidates: int = hyperparameter(
        "pairs the lookahead expert plays on per labelled state", 3, kind="int", low=1
    )
    imitation_label_every: int = hyperparameter(
        "the expert labels one decision in this many", 1, kind="int", low=1
    )
    imitation_temperature: float = hyperparameter(
        "the scores are divided by this in the imitation softmax", 0.05, low=0.0, low_open=True
    )
    imitation_learning_rate: float = hyperparameter(
        "Adam step size of the imitation", 1e-5, low=0.0, high=1.0, low_open=True
    )
    imitation_anchor: float = hyperparameter(
        "weight of the squared learned part of the scores (against waiting's) in the "
        "imitation loss (0: the scores may drift as far as the labels pull them)",
        1.0,
        low=0.0,
    )

    def check(self) -> None:
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"pairwise.batch_size: {self.batch_size} is larger than pairwise.buffer_size "
                f"{self.buffer_size}"
            )
