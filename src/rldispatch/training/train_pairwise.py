"""Training the pairwise Q-network over a distribution of days (any fleet size).

The default run (:class:`PairwiseTrainConfig` defaults, the final model of ``docs/pairwise.md``):

1. The network starts as the greedy policy on the known reward of each action (its output
   layers at zero, see :class:`rldispatch.agents.pairwise.network.KnownReward`); the untrained
   network plays the tuning days for reference, and the state value starts at that of one
   greedy day.
2. **Double DQN** on the agent's own days: epsilon-greedy over waiting and the candidate
   pairs, n-step returns, a Polyak-averaged target network (the one evaluated and saved) and a
   penalty keeping the learned part of the pairs' ranking small unless the returns support it.
3. Every ``eval_every_days`` days the greedy policy plays the tuning days (``TUNING_SEEDS``,
   never a held-out day); the best model so far is kept.

Options, for the ablations: ``known_reward=False`` (a plain dueling Q-network learns
everything), ``shaping=False`` (the env's reward), demonstrations (``teacher``: a heuristic
plays ``demo_days`` days, ``pretrain_steps`` on them with the DQfD large-margin loss, a few
kept in every later batch) and a rollout warm start (``rollout_days``: the greedy policy's
best pairs tried on copies of the day, their return differences fitted).

The agent learns from a shaped reward whose day total differs from the env's by a constant
(:class:`TrainingReward`): what a decision settles is paid when it is taken. An assignment
earns the bonus plus the cancellation it avoids; a late pickup is charged when a plan first
makes it late (the assigned booking itself or one behind it in the plan, pushed back), not
when the driver sets off, possibly hundreds of decisions later. Every reported figure is the
env's own reward.

Output, in ``out_dir``: ``best_model.safetensors``, ``final_model.safetensors`` and
``training_metrics.json`` (per-day records and evaluations).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rldispatch.agents.pairwise.agent import (
    TIE_TOLERANCE,
    PairDQNAgent,
    PairDQNConfig,
    greedy_candidate,
)
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState, planned_late_count
from rldispatch.agents.pairwise.model_file import PairwiseMetadata, save_pairwise_model
from rldispatch.agents.pairwise.network import KnownReward, PairQNetwork, choose
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.replay import CounterfactualBuffer, PairReplayBuffer
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.rewards import RewardConfig
from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import CANCELLED
from rldispatch.training.evaluation import evaluate_policy
from rldispatch.training.fleet_days import FleetDayDistribution

Log = Callable[[str], None]


@dataclass(frozen=True)
class PairwiseTrainConfig:
    """Settings of a pairwise training run (steps are decisions).

    :param teacher: baseline whose decisions are the demonstrations (None: no warm start).
    :param demo_days: days the teacher plays.
    :param pretrain_steps: gradient steps on the demonstrations before the agent plays.
    :param demo_batch_size: demonstrations in each later batch (0: none after the warm start).
    :param max_days: agent days at most; ``max_wall_time_s`` usually ends the run first.
    :param max_wall_time_s: wall-time budget of the whole run, demonstrations included.
    :param shaping: learn from the shaped reward (see the module docstring) or the env's.
    :param known_reward: add each action's known reward to the network's scores, so it
        learns only the value of what follows (see :class:`KnownReward`).
    :param keep_average: evaluate and save the target network (a Polyak average of the
        online weights, smoother than they are) rather than the online network.
    :param calibrate_value: start the state value at that of a greedy day (one day played,
        not stored) instead of zero.
    :param reward_scale: rewards are multiplied by this before learning.
    :param eval_days: tuning days of each evaluation.
    :param rollout_days: days on which the greedy policy plays and, every ``rollout_every``
        decisions, tries its ``rollout_candidates`` best pairs, each on a copy of the day
        followed for ``rollout_horizon`` greedy decisions (0: no rollout warm start).
    :param rollout_steps: gradient steps fitting the scores' differences within a state to
        those of the rollout returns (one step of policy improvement, distilled).
    :param rollout_time_share: share of ``max_wall_time_s`` the rollouts may take.
    """

    agent: PairDQNConfig = field(default_factory=PairDQNConfig)
    days: FleetDayDistribution = field(default_factory=FleetDayDistribution)
    seed: int = 0
    teacher: str | None = None
    demo_days: int = 40
    pretrain_steps: int = 2_000
    demo_batch_size: int = 16
    max_days: int = 100_000
    max_wall_time_s: float | None = 1_200.0
    epsilon_start: float = 0.05
    epsilon_end: float = 0.02
    epsilon_decay_steps: int = 20_000
    learning_starts: int = 1_000
    train_frequency: int = 2
    buffer_size: int = 50_000
    shaping: bool = True
    known_reward: bool = True
    calibrate_value: bool = True
    keep_average: bool = True
    reward_scale: float = 0.2
    eval_every_days: int = 20
    eval_days: int = 16
    rollout_days: int = 0
    rollout_every: int = 3
    rollout_horizon: int = 40
    rollout_candidates: int = 3
    rollout_steps: int = 3_000
    rollout_time_share: float = 0.5

    def __post_init__(self) -> None:
        counts = (
            "demo_days",
            "pretrain_steps",
            "demo_batch_size",
            "max_days",
            "epsilon_decay_steps",
            "learning_starts",
            "eval_every_days",
            "rollout_days",
            "rollout_steps",
        )
        for name in counts:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"pairwise_train.{name}: must be an integer >= 0, got {value!r}")
        for name in (
            "train_frequency",
            "buffer_size",
            "eval_days",
            "rollout_every",
            "rollout_horizon",
            "rollout_candidates",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"pairwise_train.{name}: must be an integer >= 1, got {value!r}")
        for name in ("epsilon_start", "epsilon_end", "rollout_time_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"pairwise_train.{name}: must be in [0, 1], got {value!r}")
        if not self.reward_scale > 0:
            raise ValueError(f"pairwise_train.reward_scale: must be > 0, got {self.reward_scale!r}")
        if self.max_wall_time_s is not None and not self.max_wall_time_s > 0:
            raise ValueError("pairwise_train.max_wall_time_s: must be > 0 or None")
        if self.teacher is not None and self.teacher not in ("nearest", "insertion", "matching"):
            raise ValueError(
                f"pairwise_train.teacher: {self.teacher!r} is not nearest, insertion or matching"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["days"]["fleet_sizes"] = list(self.days.fleet_sizes)
        return data


@dataclass(frozen=True)
class PairwiseTrainResult:
    out_dir: Path
    best_model_path: Path
    final_model_path: Path
    metrics_path: Path
    days: int
    steps: int
    wall_time_s: float
    best_eval_reward: float | None
    evaluations: list[dict[str, Any]]


class TrainingReward:
    """The reward the agent learns from, step by step (see the module docstring).

    With shaping: ``r + c * (assigned + cancelled) - p * (change in planned late pickups)``,
    ``c`` the cancellation penalty, ``p`` the late-pickup penalty. A booking's fate is then
    paid when it is decided: ``bonus + c`` at its assignment, nothing more at its
    cancellation; a late pickup when a plan first makes it late (its penalty at pickup is
    offset). A day's total differs from the env's by ``c * bookings``, a constant.
    """

    def __init__(self, weights: RewardConfig, shaping: bool, scale: float):
        self.weights = weights
        self.shaping = shaping
        self.scale = scale
        self.planned_late = 0
        self.cancelled = 0

    def _measure(self, env: DispatchEnv) -> tuple[int, int]:
        sim = env.sim
        return planned_late_count(sim), int((sim.status == CANCELLED).sum())

    def start(self, env: DispatchEnv) -> None:
        self.planned_late, self.cancelled = self._measure(env)

    def __call__(self, env: DispatchEnv, assigned: bool, reward: float) -> float:
        if not self.shaping:
            return reward * self.scale
        planned_late, cancelled = self._measure(env)
        weights = self.weights
        shaped = reward + weights.cancellation_penalty * (assigned + cancelled - self.cancelled)
        shaped -= weights.late_pickup_penalty * (planned_late - self.planned_late)
        self.planned_late, self.cancelled = planned_late, cancelled
        return shaped * self.scale

    def known_reward(self) -> KnownReward:
        """The part of this reward an action's features determine when it is chosen."""
        weights, scale = self.weights, self.scale
        per_late = -weights.late_pickup_penalty * scale if self.shaping else 0.0
        assignment = weights.assignment_bonus
        if self.shaping:
            assignment += weights.cancellation_penalty
        return KnownReward(
            assignment=assignment * scale,
            per_10km=-weights.km_cost * 10.0 * scale,
            per_late=per_late,
            wait=-weights.idle_wait_penalty * scale,
        )


def linear_epsilon(config: PairwiseTrainConfig, step: int) -> float:
    if config.epsilon_decay_steps == 0:
        return config.epsilon_end
    fraction = min(step / config.epsilon_decay_steps, 1.0)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def summarise_days(days: Sequence[DayMetrics]) -> dict[str, float]:
    names = ("reward", "completion_rate", "late_pickup_rate", "cancelled", "distance_km")
    return {name: float(np.mean([getattr(day, name) for day in days])) for name in names}


class PairwiseTrainer:
    """One training run; :meth:`run` does it all (see the module docstring)."""

    def __init__(
        self,
        config: PairwiseTrainConfig,
        out_dir: str | Path,
        log: Log | None = None,
        eval_days: Sequence[Scenario] | None = None,
        on_day: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.log = log or (lambda message: None)
        self.on_day = on_day or (lambda record: None)
        agent_config = config.agent
        self.env_config = EnvConfig(max_drivers=config.days.max_drivers)
        self.reward = TrainingReward(self.env_config.reward, config.shaping, config.reward_scale)
        known = self.reward.known_reward() if config.known_reward else None
        self.agent = PairDQNAgent(agent_config, seed=config.seed, known_reward=known)
        self.features = FeatureBuilder(agent_config.candidates_per_booking)
        self.env = DispatchEnv(preset=None, scenarios=[config.days.day(0)], config=self.env_config)
        max_pairs = self.env_config.visible_slots * agent_config.candidates_per_booking
        shape = (config.days.max_drivers, self.env_config.visible_slots, max_pairs)
        self.buffer = PairReplayBuffer(config.buffer_size, *shape, seed=config.seed)
        self.demo_buffer = PairReplayBuffer(config.buffer_size, *shape, seed=config.seed + 1)
        self.counterfactual = CounterfactualBuffer(
            config.buffer_size, *shape, config.rollout_candidates, seed=config.seed + 2
        )
        self.rollout_features = FeatureBuilder(agent_config.candidates_per_booking)
        self.eval_days = (
            list(eval_days)
            if eval_days is not None
            else (config.days.tuning_days(config.eval_days))
        )
        self.day_index = 0
        self.steps = 0
        self.agent_days = 0
        self.records: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.best_eval_reward: float | None = None
        self.started = time.perf_counter()

    # --- playing days ----------------------------------------------------------------------

    def play_day(
        self, choose: Callable[[PairState], int]
    ) -> tuple[list[PairState], list[int], list[float], dict[str, Any]]:
        """Play the next training day; ``choose(state)`` gives a candidate index or -1."""
        day = self.config.days.day(self.day_index)
        self.day_index += 1
        env = self.env
        env.reset(options={"scenario": day})
        self.reward.start(env)
        states: list[PairState] = []
        actions: list[int] = []
        rewards: list[float] = []
        terminated = env.sim.done  # after reset: the day is over before any decision
        while not terminated:
            state = self.features.build(env)
            candidate = choose(state)
            action = state.action(candidate)
            _, reward, terminated, _, _ = env.step(action)
            states.append(state)
            actions.append(candidate + 1)
            rewards.append(self.reward(env, action != 0, reward))
        metrics = env.metrics().as_dict()
        metrics["drivers"] = len(day.drivers)
        return states, actions, rewards, metrics

    def _teacher_choice(self, teacher: Any) -> Callable[[PairState], int]:
        env = self.env

        def choose(state: PairState) -> int:
            action = int(teacher.act(env))
            candidate = state.candidate_of_action(action)
            if candidate >= 0 or action == 0:
                return candidate
            # The teacher's driver ties with a candidate (same insertion cost) that the
            # id order ranked first: take that one.
            _, slot = divmod(action - 1, env.config.visible_slots)
            in_slot = np.flatnonzero(state.pair_slot == slot)
            if in_slot.size == 0:
                return -1
            return int(in_slot[np.argmin(state.pairs[in_slot, 0])])

        return choose

    def collect_demonstrations(self) -> None:
        config = self.config
        if config.teacher is None or config.demo_days == 0:
            return
        teacher = make_baseline(config.teacher)
        choose = self._teacher_choice(teacher)
        gamma, n_step = config.agent.gamma, config.agent.n_step
        for _ in range(config.demo_days):
            states, actions, rewards, _ = self.play_day(choose)
            self.demo_buffer.add_day(states, actions, rewards, gamma, n_step, demonstration=True)
        self.log(
            f"demonstrations: {len(self.demo_buffer)} decisions of {config.teacher} on "
            f"{config.demo_days} days ({self.elapsed_s():.0f} s)"
        )

    def pretrain(self) -> None:
        config = self.config
        if len(self.demo_buffer) == 0 or config.pretrain_steps == 0:
            return
        batch = config.agent.batch_size
        for step in range(config.pretrain_steps):
            stats = self.agent.update(self.demo_buffer.sample(batch))
            if (step + 1) % 500 == 0:
                self.log(
                    f"warm start {step + 1}/{config.pretrain_steps}: td {stats.td_loss:.4f} "
                    f"margin {stats.margin_loss:.4f} q {stats.q_mean:.2f}"
                )

    def _learn(self) -> dict[str, float]:
        config = self.config
        samples = [self.buffer.sample(config.agent.batch_size)]
        if config.demo_batch_size and len(self.demo_buffer):
            samples.append(self.demo_buffer.sample(config.demo_batch_size))
        stats = self.agent.update(*samples)
        return {"td_loss": stats.td_loss, "q_mean": stats.q_mean}

    def calibrate_value(self) -> None:
        """Start ``V`` at the discounted value of the average step of a greedy day."""
        _, _, rewards, _ = self.play_day(
            lambda state: greedy_candidate(self.agent.q_function, state)
        )
        gamma = self.config.agent.gamma
        value = gamma * float(np.mean(rewards)) / (1.0 - gamma)
        self.agent.set_state_value(value)
        self.log(f"state value starts at {value:.2f} (mean step reward {np.mean(rewards):.3f})")

    def _rollout_return(self, env: DispatchEnv, action: int, horizon: int) -> float:
        """Shaped return of ``action`` then ``horizon - 1`` greedy decisions, on a copy."""
        memo = {id(env.scenario): env.scenario, id(env.scenarios): env.scenarios}
        branch = copy.deepcopy(env, memo)
        reward = TrainingReward(
            self.env_config.reward, self.config.shaping, self.config.reward_scale
        )
        reward.start(branch)
        total = 0.0
        for _ in range(horizon):
            _, step_reward, terminated, _, _ = branch.step(action)
            total += reward(branch, action != 0, step_reward)
            if terminated:
                break
            state = self.rollout_features.build(branch)
            action = state.action(greedy_candidate(self.agent.q_function, state))
        return total

    def collect_rollouts(self) -> None:
        """Counterfactual data: the greedy policy's states, a few actions tried from each."""
        config = self.config
        if config.rollout_days == 0:
            return
        budget = (
            config.max_wall_time_s * config.rollout_time_share
            if config.max_wall_time_s is not None
            else None
        )
        q_function = self.agent.q_function
        days = 0
        while days < config.rollout_days and (budget is None or self.elapsed_s() < budget):
            day = self.config.days.day(self.day_index)
            self.day_index += 1
            env = self.env
            env.reset(options={"scenario": day})
            decision = 0
            terminated = env.sim.done
            while not terminated and len(self.counterfactual) < self.counterfactual.states.capacity:
                state = self.features.build(env)
                q_wait, q_pairs = q_function(state)
                if decision % config.rollout_every == 0 and state.n_pairs:
                    best = np.argsort(-q_pairs, kind="stable")[: config.rollout_candidates]
                    candidates = best.tolist()
                    returns = [
                        self._rollout_return(env, state.action(c), config.rollout_horizon)
                        for c in candidates
                    ]
                    self.counterfactual.add(state, [c + 1 for c in candidates], returns)
                action = state.action(choose(q_wait, q_pairs, state.pair_order, TIE_TOLERANCE))
                _, _, terminated, _, _ = env.step(action)
                decision += 1
            days += 1
        self.log(
            f"rollouts: {len(self.counterfactual)} states of {days} days, "
            f"its {config.rollout_candidates} best pairs tried from each "
            f"({self.elapsed_s():.0f} s)"
        )

    def distil_rollouts(self) -> None:
        config = self.config
        if len(self.counterfactual) == 0:
            return
        losses = []
        for step in range(config.rollout_steps):
            losses.append(self.agent.counterfactual_update(self.counterfactual.sample(64)))
            if (step + 1) % 500 == 0:
                self.log(
                    f"rollout warm start {step + 1}/{config.rollout_steps}: loss "
                    f"{np.mean(losses[-500:]):.4f} [{self.elapsed_s():.0f} s]"
                )
        # The DQN phase keeps the ranking learned here unless its returns say otherwise.
        self.agent.set_anchor()

    def play_agent_day(self) -> dict[str, Any]:
        config = self.config
        agent = self.agent
        losses: list[float] = []
        q_means: list[float] = []
        start_steps = self.steps
        started = time.perf_counter()

        def choose(state: PairState) -> int:
            epsilon = linear_epsilon(config, self.steps)
            candidate = agent.act(state, epsilon)
            self.steps += 1
            ready = len(self.buffer) >= max(config.learning_starts, config.agent.batch_size)
            if ready and self.steps % config.train_frequency == 0:
                learned = self._learn()
                losses.append(learned["td_loss"])
                q_means.append(learned["q_mean"])
            return candidate

        states, actions, rewards, metrics = self.play_day(choose)
        self.buffer.add_day(states, actions, rewards, config.agent.gamma, config.agent.n_step)
        self.agent_days += 1
        record = {
            "day": self.agent_days,
            "steps": self.steps,
            "decisions": self.steps - start_steps,
            "epsilon": linear_epsilon(config, self.steps),
            "td_loss": float(np.mean(losses)) if losses else None,
            "q_mean": float(np.mean(q_means)) if q_means else None,
            "seconds": time.perf_counter() - started,
            "wall_time_s": self.elapsed_s(),
            "reward": metrics["reward"],
            "completion_rate": metrics["completion_rate"],
            "late_pickup_rate": metrics["late_pickup_rate"],
            "drivers": metrics["drivers"],
        }
        self.records.append(record)
        return record

    # --- evaluation and files --------------------------------------------------------------

    @property
    def kept_network(self) -> PairQNetwork:
        """The network that is evaluated and saved."""
        agent = self.agent
        return agent.target_network if self.config.keep_average else agent.q_network

    def evaluate(self, stage: str = "dqn") -> dict[str, Any]:
        policy = PairwisePolicy(
            self.kept_network,
            candidates_per_booking=self.config.agent.candidates_per_booking,
        )
        days = evaluate_policy(policy, self.eval_days, self.env_config)
        record = {
            "stage": stage,
            "day": self.agent_days,
            "steps": self.steps,
            **summarise_days(days),
        }
        record["wall_time_s"] = self.elapsed_s()
        self.evaluations.append(record)
        selectable = stage not in ("known rewards", "untrained")
        if selectable and (
            self.best_eval_reward is None or record["reward"] > self.best_eval_reward
        ):
            self.best_eval_reward = record["reward"]
            save_pairwise_model(self.best_model_path, self.kept_network, self.metadata())
            record["best"] = True
        self.log(
            f"eval after {self.agent_days} days / {self.steps} steps: reward "
            f"{record['reward']:.1f}, completion {record['completion_rate']:.3f}, late "
            f"{record['late_pickup_rate']:.3f}{' (best)' if record.get('best') else ''} "
            f"[{self.elapsed_s():.0f} s]"
        )
        return record

    @property
    def best_model_path(self) -> Path:
        return self.out_dir / "best_model.safetensors"

    @property
    def final_model_path(self) -> Path:
        return self.out_dir / "final_model.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "training_metrics.json"

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> dict[str, Any]:
        return {
            "agent_days": self.agent_days,
            "demo_days": self.config.demo_days if self.config.teacher else 0,
            "steps": self.steps,
            "wall_time_s": self.elapsed_s(),
            "best_eval_reward": self.best_eval_reward,
            "eval_days": [day.name for day in self.eval_days],
        }

    def metadata(self) -> PairwiseMetadata:
        agent = self.config.agent
        env_config = asdict(self.env_config)
        return PairwiseMetadata(
            hidden=agent.hidden,
            head_hidden=agent.head_hidden,
            candidates_per_booking=agent.candidates_per_booking,
            env_config=env_config,
            hyperparameters=self.config.to_dict(),
            training_summary=self.summary(),
        )

    def _write_metrics(self) -> None:
        atomic_write_json(
            self.metrics_path,
            {
                "config": self.config.to_dict(),
                "summary": self.summary(),
                "days": self.records,
                "evaluations": self.evaluations,
            },
        )

    # --- the run ---------------------------------------------------------------------------

    def out_of_time(self) -> bool:
        budget = self.config.max_wall_time_s
        return budget is not None and self.elapsed_s() >= budget

    def run(self) -> PairwiseTrainResult:
        config = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        warm_start = (
            config.teacher is not None and config.demo_days > 0
        ) or config.rollout_days > 0
        if config.eval_every_days:
            # The untrained network, for reference: never kept as the best model.
            self.evaluate(stage="known rewards" if config.known_reward else "untrained")
        self.collect_demonstrations()
        self.pretrain()
        self.collect_rollouts()
        self.distil_rollouts()
        if config.calibrate_value and len(self.demo_buffer) == 0:
            self.calibrate_value()
        if config.eval_every_days and warm_start:
            self.evaluate(stage="warm start")
        while self.agent_days < config.max_days and not self.out_of_time():
            record = self.play_agent_day()
            self.on_day(record)
            if self.agent_days % 10 == 0:
                self.log(
                    f"day {record['day']} ({record['drivers']} drivers): reward "
                    f"{record['reward']:.0f} completion {record['completion_rate']:.3f} late "
                    f"{record['late_pickup_rate']:.3f} eps {record['epsilon']:.3f} "
                    f"steps {record['steps']} [{self.elapsed_s():.0f} s]"
                )
            if config.eval_every_days and self.agent_days % config.eval_every_days == 0:
                self.evaluate()
                self._write_metrics()
        last = self.evaluations[-1]["day"] if self.evaluations else None
        if config.eval_every_days and last != self.agent_days:
            self.evaluate()
        save_pairwise_model(self.final_model_path, self.kept_network, self.metadata())
        if not self.best_model_path.exists():
            save_pairwise_model(self.best_model_path, self.kept_network, self.metadata())
        self._write_metrics()
        return PairwiseTrainResult(
            out_dir=self.out_dir,
            best_model_path=self.best_model_path,
            final_model_path=self.final_model_path,
            metrics_path=self.metrics_path,
            days=self.agent_days,
            steps=self.steps,
            wall_time_s=self.elapsed_s(),
            best_eval_reward=self.best_eval_reward,
            evaluations=list(self.evaluations),
        )


def train_pairwise(
    config: PairwiseTrainConfig | None = None,
    out_dir: str | Path = "runs/pairwise",
    log: Log | None = None,
    torch_threads: int | None = 1,
    on_day: Callable[[dict[str, Any]], None] | None = None,
) -> PairwiseTrainResult:
    """Train a pairwise model (see the module docstring); returns where everything went.

    :param torch_threads: ``torch.set_num_threads`` for the run (small networks are fastest
        on one thread); None leaves it alone.
    :param on_day: called with each agent day's record (day, steps, reward, wall time, ...).
    """
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    trainer = PairwiseTrainer(config or PairwiseTrainConfig(), out_dir, log=log, on_day=on_day)
    return trainer.run()


def pairwise_config_from_dict(data: dict[str, Any]) -> PairwiseTrainConfig:
    """A :class:`PairwiseTrainConfig` from its JSON form (any subset of its fields; ``agent``
    and ``days`` as objects of their own fields).

    :raises ValueError: naming the first unknown or invalid field.
    """
    if not isinstance(data, dict):
        raise ValueError("pairwise_train: must be a JSON object")
    values = dict(data)
    known = {item.name for item in fields(PairwiseTrainConfig)}
    nested = {"agent": PairDQNConfig, "days": FleetDayDistribution}
    for key in values:
        if key not in known:
            raise ValueError(f"pairwise_train.{key}: unknown field")
    for key, kind in nested.items():
        if key not in values:
            continue
        part = values[key]
        if not isinstance(part, dict):
            raise ValueError(f"pairwise_train.{key}: must be a JSON object")
        allowed = {item.name for item in fields(kind)}
        for name in part:
            if name not in allowed:
                raise ValueError(f"pairwise_train.{key}.{name}: unknown field")
        part = {
            name: tuple(value) if isinstance(value, list) else value for name, value in part.items()
        }
        try:
            values[key] = kind(**part)
        except (TypeError, ValueError) as error:
            raise ValueError(f"pairwise_train.{key}: {error}") from error
    try:
        return PairwiseTrainConfig(**values)
    except TypeError as error:
        raise ValueError(f"pairwise_train: {error}") from error
