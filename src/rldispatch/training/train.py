"""The DQN training loop, with periodic evaluation, checkpoints and resume.

A run lives in one folder::

    out_dir/
      config.json              the DQNConfig of the run
      run.json                 days, seed, evaluation and checkpoint settings
      training_metrics.json    one record per episode and per evaluation, and a summary
      best_model.safetensors   the model with the best mean reward on the evaluation days
      final_model.safetensors  the model at the end of the run
      checkpoints/episode_000100.safetensors   a model every ``checkpoint_every`` episodes
      checkpoints/resume.pt    everything needed to go on after a kill (see checkpoint.py)
      tensorboard/             episode reward, loss, epsilon, Q-values, evaluation, SPS

``train(..., resume=True)`` on that folder continues from ``checkpoints/resume.pt`` up to
``episodes`` in total. The replay buffer is part of the checkpoint (a resumed run continues
exactly as the uninterrupted one would have); with ``save_replay_buffer=False`` it is not,
and a resumed run refills it: gradient steps pause until it holds ``learning_starts``
transitions again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.utils.seeding import np_random
from tqdm import tqdm

from rldispatch.agents.dqn.agent import DQNAgent, linear_epsilon
from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import (
    ModelFileError,
    ModelMetadata,
    env_config_to_dict,
    load_model,
    save_model,
)
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.dqn.replay import NStepAccumulator, ReplayBuffer
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json, remove_unfinished_writes
from rldispatch.scenarios.presets import TUNING_SEEDS, make_preset
from rldispatch.sim.metrics import DayMetrics
from rldispatch.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rldispatch.training.evaluation import evaluate_policy
from rldispatch.training.shaping import shaping_potential
from rldispatch.training.threads import single_threaded_numerics

VALIDATION_SEEDS = range(TUNING_SEEDS.stop - 10_000, TUNING_SEEDS.stop)
"""Day seeds of plain training's evaluation days: the end of ``TUNING_SEEDS``, apart from
the tuner's days (its start) and never a held-out day."""
RECENT_EPISODES = 20

EvaluationCallback = Callable[[int, float], None]


class TrainingError(ValueError):
    """A run that cannot start or resume as asked."""


def validation_days(preset: str = "geneva", count: int = 10) -> list[Scenario]:
    """Plain training's fixed evaluation days: days ``VALIDATION_SEEDS[:count]`` of ``preset``."""
    return [make_preset(preset, seed) for seed in VALIDATION_SEEDS[:count]]


def tuning_days(preset: str = "geneva", count: int = 10) -> list[Scenario]:
    """The auto-tuner's evaluation days: the first ``count`` days of ``TUNING_SEEDS``."""
    return [make_preset(preset, seed) for seed in TUNING_SEEDS[:count]]


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its files."""

    out_dir: Path

    @property
    def config(self) -> Path:
        return self.out_dir / "config.json"

    @property
    def run(self) -> Path:
        return self.out_dir / "run.json"

    @property
    def metrics(self) -> Path:
        return self.out_dir / "training_metrics.json"

    @property
    def best_model(self) -> Path:
        return self.out_dir / "best_model.safetensors"

    @property
    def final_model(self) -> Path:
        return self.out_dir / "final_model.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def resume(self) -> Path:
        return self.checkpoints / "resume.pt"

    @property
    def tensorboard(self) -> Path:
        return self.out_dir / "tensorboard"

    def snapshot(self, episode: int) -> Path:
        return self.checkpoints / f"episode_{episode:06d}.safetensors"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    out_dir: Path
    episodes: int
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    final_model_path: Path
    metrics_path: Path
    best_model_path: Path | None
    best_eval_reward: float | None
    best_episode: int | None
    stopped_by_time_limit: bool
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def train(
    config: DQNConfig,
    out_dir: str | Path,
    episodes: int,
    *,
    preset: str | None = "geneva",
    scenarios: Sequence[Scenario] | None = None,
    env_config: EnvConfig | None = None,
    seed: int = 0,
    resume: bool = False,
    eval_days: Sequence[Scenario] | None = None,
    eval_every: int = 50,
    checkpoint_every: int = 50,
    progress: bool = True,
    on_evaluation: EvaluationCallback | None = None,
    max_wall_time_s: float | None = None,
    save_replay_buffer: bool = True,
    tensorboard: bool = True,
    torch_threads: int | None = 1,
) -> TrainResult:
    """Train a DQN for ``episodes`` days (in total, counting those of a resumed run).

    :param preset: training days are days of this preset drawn from ``TRAINING_SEEDS``...
    :param scenarios: ...or drawn from these scenarios (then ``preset`` only labels the model).
    :param eval_days: the fixed evaluation days; default: 10 days of ``VALIDATION_SEEDS``
        (the tuner passes :func:`tuning_days`). The best model is the one with the best mean
        reward on them.
    :param eval_every: evaluate every this many episodes, and at the end (0: never).
    :param checkpoint_every: checkpoint and model snapshot every this many episodes (0: only
        at the end).
    :param on_evaluation: called with ``(episode, mean evaluation reward)`` after each
        evaluation; an exception it raises (such as ``optuna.TrialPruned``) ends training
        and propagates.
    :param max_wall_time_s: stop before an episode once the run has taken this long.
    :param save_replay_buffer: keep the replay buffer in the checkpoint (see module docs).
    :param torch_threads: threads of PyTorch and NumPy's BLAS for the run (small networks are
        fastest single-threaded, see :mod:`rldispatch.training.threads`); None leaves them.
    """
    if torch_threads is not None:
        single_threaded_numerics(torch_threads)
    trainer = Trainer(
        config=config,
        paths=RunPaths(Path(out_dir)),
        episodes=episodes,
        preset=preset,
        scenarios=list(scenarios) if scenarios else None,
        env_config=env_config or EnvConfig(),
        seed=seed,
        eval_days=list(eval_days)
        if eval_days is not None
        else (validation_days(preset or "geneva") if eval_every else []),
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        progress=progress,
        on_evaluation=on_evaluation,
        max_wall_time_s=max_wall_time_s,
        save_replay_buffer=save_replay_buffer,
        tensorboard=tensorboard,
    )
    trainer.start(resume)
    return trainer.run()


class Trainer:
    """One training run; :func:`train` is the way to use it."""

    def __init__(
        self,
        config: DQNConfig,
        paths: RunPaths,
        episodes: int,
        preset: str | None,
        scenarios: list[Scenario] | None,
        env_config: EnvConfig,
        seed: int,
        eval_days: list[Scenario],
        eval_every: int,
        checkpoint_every: int,
        progress: bool,
        on_evaluation: EvaluationCallback | None,
        max_wall_time_s: float | None,
        save_replay_buffer: bool,
        tensorboard: bool,
    ) -> None:
        if episodes < 1:
            raise TrainingError(f"episodes: must be at least 1, got {episodes}")
        if eval_every < 0 or checkpoint_every < 0:
            raise TrainingError("eval_every and checkpoint_every: must be >= 0")
        if eval_every and not eval_days:
            raise TrainingError("eval_days: evaluation needs at least one day")
        if preset is None and not scenarios:
            raise TrainingError("train needs a preset or a list of scenarios")
        self.config = config
        self.paths = paths
        self.episodes = int(episodes)
        self.preset = preset
        self.scenarios = scenarios
        self.seed = int(seed)
        self.eval_days = eval_days
        self.eval_every = int(eval_every)
        self.checkpoint_every = int(checkpoint_every)
        self.progress = progress
        self.on_evaluation = on_evaluation
        self.max_wall_time_s = max_wall_time_s
        self.save_replay_buffer = save_replay_buffer
        self.use_tensorboard = tensorboard

        self.env = DispatchEnv(
            preset=None if scenarios else preset, scenarios=scenarios, config=env_config
        )
        observation_size = int(self.env.observation_space.shape[0])
        n_actions = int(self.env.action_space.n)
        agent_seed, buffer_seed, env_seed = (
            int(value) for value in np.random.SeedSequence(self.seed).generate_state(3)
        )
        self.agent = DQNAgent(
            observation_size,
            n_actions,
            config,
            seed=agent_seed,
            max_drivers=env_config.max_drivers,
            visible_slots=env_config.visible_slots,
        )
        self.buffer = ReplayBuffer(config.buffer_size, observation_size, n_actions, buffer_seed)
        self.env.np_random, _ = np_random(env_seed)
        self.n_step = NStepAccumulator(config.n_step, config.gamma)

        self.episode = 0
        self.total_steps = 0
        self.elapsed_before_s = 0.0
        self.episode_records: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.best_eval_reward: float | None = None
        self.best_episode: int | None = None
        self.resumed = False
        self.stopped_by_time_limit = False

    # --- setup -----------------------------------------------------------------------------

    def run_settings(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "scenarios": [day.name for day in self.scenarios] if self.scenarios else None,
            "env_config": env_config_to_dict(self.env.config),
            "seed": self.seed,
            "episodes": self.episodes,
            "eval_days": [day.name for day in self.eval_days],
            "eval_every": self.eval_every,
            "checkpoint_every": self.checkpoint_every,
            "save_replay_buffer": self.save_replay_buffer,
        }

    def start(self, resume: bool) -> None:
        """Load the checkpoint when resuming, else make sure no run is overwritten."""
        paths = self.paths
        if resume and paths.resume.exists():
            remove_unfinished_writes(paths.out_dir)  # left by the kill this run resumes from
            self._restore(load_checkpoint(paths.resume))
            self.resumed = True
        elif not resume and (paths.resume.exists() or paths.metrics.exists()):
            raise TrainingError(
                f"{paths.out_dir} already holds a training run: pass --resume to continue it "
                "or choose another --out"
            )
        paths.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(paths.config, self.config.to_dict())
        atomic_write_json(paths.run, self.run_settings())

    def _restore(self, state: dict[str, Any]) -> None:
        saved_config = state["config"]
        if saved_config != self.config.to_dict():
            changed = sorted(
                key
                for key in set(saved_config) | set(self.config.to_dict())
                if saved_config.get(key) != self.config.to_dict().get(key)
            )
            raise TrainingError(
                f"--resume: {self.paths.out_dir} was trained with a different config "
                f"(differs in {', '.join(changed)}); resume with the same --config or start a "
                "new --out"
            )
        saved_run = state["run"]
        for key in ("preset", "scenarios", "env_config"):
            if saved_run.get(key) != self.run_settings()[key]:
                raise TrainingError(
                    f"--resume: {self.paths.out_dir} was trained on different days or env "
                    f"({key} differs); resume with the same --preset/--scenario"
                )
        if state["episode"] > self.episodes:
            raise TrainingError(
                f"--resume: the run is already at episode {state['episode']}, beyond "
                f"--episodes {self.episodes}"
            )
        try:
            self.agent.load_state_dict(state["agent"])
            if state.get("replay_buffer") is not None:
                self.buffer.load_state_dict(state["replay_buffer"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"{self.paths.resume}: does not fit this run ({error})"
            ) from error
        self.env.np_random.bit_generator.state = state["env_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.episode = int(state["episode"])
        self.total_steps = int(state["total_steps"])
        self.elapsed_before_s = float(state["elapsed_s"])
        self.episode_records = list(state["episode_records"])
        self.evaluations = list(state["evaluations"])
        self.best_eval_reward = state["best_eval_reward"]
        self.best_episode = state["best_episode"]
        self._adopt_newer_best_model()

    def _adopt_newer_best_model(self) -> None:
        """A kill between writing the best model and the checkpoint leaves a best model newer
        than the checkpoint: keep its score, so a worse model never replaces it."""
        if not self.paths.best_model.exists():
            return
        try:
            summary = load_model(self.paths.best_model).metadata.training_summary
        except ModelFileError:
            return
        reward, episode = summary.get("eval_reward"), summary.get("episodes")
        if reward is not None and (self.best_eval_reward is None or reward > self.best_eval_reward):
            self.best_eval_reward = float(reward)
            self.best_episode = int(episode)

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.segment_start = time.perf_counter()
        self.segment_steps = 0
        writer = self._open_tensorboard()
        self.writer = writer
        bar = tqdm(
            total=self.episodes,
            initial=self.episode,
            desc="train",
            unit="day",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        recent_rewards: deque[float] = deque(
            (record["reward"] for record in self.episode_records[-RECENT_EPISODES:]),
            maxlen=RECENT_EPISODES,
        )
        try:
            while self.episode < self.episodes:
                if self.max_wall_time_s is not None and self.elapsed_s() >= self.max_wall_time_s:
                    self.stopped_by_time_limit = True
                    break
                record = self._play_episode()
                self.episode += 1
                record["episode"] = self.episode
                self.episode_records.append(record)
                recent_rewards.append(record["reward"])
                self._log_episode(record)
                bar.update(1)
                bar.set_postfix(
                    reward=f"{np.mean(recent_rewards):.0f}",
                    eps=f"{record['epsilon']:.2f}",
                    loss="-" if record["td_loss"] is None else f"{record['td_loss']:.3f}",
                    sps=f"{self.steps_per_second():.0f}",
                    refresh=False,
                )
                if self.eval_every and self.episode % self.eval_every == 0:
                    self._evaluate()
                if self.checkpoint_every and self.episode % self.checkpoint_every == 0:
                    self._checkpoint()
            evaluated = self.evaluations and self.evaluations[-1]["episode"] == self.episode
            if self.eval_every and not evaluated and self.episode > 0:
                self._evaluate()
            self._checkpoint(final=True)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return TrainResult(
            out_dir=self.paths.out_dir,
            episodes=self.episode,
            total_steps=self.total_steps,
            wall_time_s=self.elapsed_s(),
            steps_per_second=self.steps_per_second(),
            final_model_path=self.paths.final_model,
            metrics_path=self.paths.metrics,
            best_model_path=self.paths.best_model if self.best_episode is not None else None,
            best_eval_reward=self.best_eval_reward,
            best_episode=self.best_episode,
            stopped_by_time_limit=self.stopped_by_time_limit,
            evaluations=list(self.evaluations),
        )

    def _play_episode(self) -> dict[str, Any]:
        """Play one training day: act, store, learn, as in CleanRL's ``dqn.py``."""
        config, agent, buffer, env = self.config, self.agent, self.buffer, self.env
        observation, info = env.reset()
        action_mask = info["action_mask"]
        self.n_step.clear()
        lateness, cancellations = config.shape_lateness, config.shape_cancellations
        shaping = lateness or cancellations
        potential = shaping_potential(env, lateness, cancellations) if shaping else 0.0
        losses: list[float] = []
        q_means: list[float] = []
        start = time.perf_counter()
        steps = 0
        terminated = False
        while not terminated:
            epsilon = linear_epsilon(config, self.total_steps)
            action = agent.act(observation, action_mask, epsilon)
            next_observation, reward, terminated, _, info = env.step(action)
            next_mask = info["action_mask"]
            if shaping:
                next_potential = shaping_potential(env, lateness, cancellations, terminated)
                reward += config.gamma * next_potential - potential
                potential = next_potential
            for transition in self.n_step.push(
                observation,
                action,
                reward * config.reward_scale,
                next_observation,
                next_mask,
                terminated,
            ):
                buffer.add(*transition)
            observation, action_mask = next_observation, next_mask
            self.total_steps += 1
            steps += 1

            if (
                len(buffer) >= max(config.learning_starts, config.batch_size)
                and self.total_steps % config.train_frequency == 0
            ):
                for _ in range(config.gradient_steps):
                    stats = agent.update(buffer.sample(config.batch_size))
                    losses.append(stats.td_loss)
                    q_means.append(stats.q_mean)
            if self.total_steps % config.target_update_interval == 0:
                agent.update_target()
        self.segment_steps += steps
        metrics = info["metrics"]
        return {
            "total_steps": self.total_steps,
            "reward": float(metrics["reward"]),
            "length": steps,
            "epsilon": float(epsilon),
            "td_loss": float(np.mean(losses)) if losses else None,
            "q_mean": float(np.mean(q_means)) if q_means else None,
            "completion_rate": float(metrics["completion_rate"]),
            "late_pickup_rate": float(metrics["late_pickup_rate"]),
            "distance_km": float(metrics["distance_km"]),
            "episode_time_s": time.perf_counter() - start,
            "wall_time_s": self.elapsed_s(),
        }

    # --- periodic work ---------------------------------------------------------------------

    def _evaluate(self) -> None:
        policy = DQNPolicy(self.agent.q_network)
        days = evaluate_policy(policy, self.eval_days, self.env.config)
        summary = summarise_days(days)
        record = {"episode": self.episode, "total_steps": self.total_steps, **summary}
        record["wall_time_s"] = self.elapsed_s()
        self.evaluations.append(record)
        if self.writer is not None:
            for name, value in summary.items():
                self.writer.add_scalar(f"eval/{name}", value, self.total_steps)
        mean_reward = summary["reward"]
        if self.best_eval_reward is None or mean_reward > self.best_eval_reward:
            self.best_eval_reward = mean_reward
            self.best_episode = self.episode
            save_model(self.paths.best_model, self.agent.q_network, self._metadata())
        if self.on_evaluation is not None:
            self.on_evaluation(self.episode, mean_reward)

    def _checkpoint(self, final: bool = False) -> None:
        """Model snapshot, metrics file, then the resume checkpoint (last: it is the commit)."""
        metadata = self._metadata()
        if final:
            save_model(self.paths.final_model, self.agent.q_network, metadata)
        else:
            save_model(self.paths.snapshot(self.episode), self.agent.q_network, metadata)
        atomic_write_json(self.paths.metrics, self._metrics_document())
        save_checkpoint(
            self.paths.resume,
            {
                "config": self.config.to_dict(),
                "run": self.run_settings(),
                "episode": self.episode,
                "total_steps": self.total_steps,
                "elapsed_s": self.elapsed_s(),
                "agent": self.agent.state_dict(),
                "replay_buffer": self.buffer.state_dict() if self.save_replay_buffer else None,
                "env_rng": self.env.np_random.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "episode_records": self.episode_records,
                "evaluations": self.evaluations,
                "best_eval_reward": self.best_eval_reward,
                "best_episode": self.best_episode,
            },
        )

    # --- figures ---------------------------------------------------------------------------

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.perf_counter() - self.segment_start

    def steps_per_second(self) -> float:
        elapsed = time.perf_counter() - self.segment_start
        return self.segment_steps / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "episodes": self.episode,
            "total_steps": self.total_steps,
            "wall_time_s": self.elapsed_s(),
            "steps_per_second": self.steps_per_second(),
            "best_eval_reward": self.best_eval_reward,
            "best_episode": self.best_episode,
            "last_eval": self.evaluations[-1] if self.evaluations else None,
            "seed": self.seed,
            "resumed": self.resumed,
            "stopped_by_time_limit": self.stopped_by_time_limit,
        }

    def _metadata(self) -> ModelMetadata:
        return ModelMetadata(
            observation_size=self.agent.observation_size,
            n_actions=self.agent.n_actions,
            env_config=env_config_to_dict(self.env.config),
            preset=self.preset,
            hyperparameters=self.config.to_dict(),
            training_summary={
                **self.summary(),
                "eval_days": [day.name for day in self.eval_days],
                "eval_reward": self.evaluations[-1]["reward"] if self.evaluations else None,
            },
        )

    def _metrics_document(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "run": self.run_settings(),
            "summary": self.summary(),
            "episodes": self.episode_records,
            "evaluations": self.evaluations,
        }

    def _open_tensorboard(self) -> Any:
        if not self.use_tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        # purge_step hides what a killed run logged after its last checkpoint.
        return SummaryWriter(
            str(self.paths.tensorboard), purge_step=self.total_steps if self.resumed else None
        )

    def _log_episode(self, record: dict[str, Any]) -> None:
        writer = self.writer
        if writer is None:
            return
        step = self.total_steps
        writer.add_scalar("charts/episodic_return", record["reward"], step)
        writer.add_scalar("charts/episode_length", record["length"], step)
        writer.add_scalar("charts/epsilon", record["epsilon"], step)
        writer.add_scalar("charts/completion_rate", record["completion_rate"], step)
        writer.add_scalar("charts/late_pickup_rate", record["late_pickup_rate"], step)
        writer.add_scalar("charts/SPS", self.steps_per_second(), step)
        if record["td_loss"] is not None:
            writer.add_scalar("losses/td_loss", record["td_loss"], step)
            writer.add_scalar("losses/q_values", record["q_mean"], step)


def summarise_days(days: Sequence[DayMetrics]) -> dict[str, float]:
    """Mean of each figure over ``days``."""
    names = ("reward", "completion_rate", "late_pickup_rate", "cancelled", "distance_km")
    return {name: float(np.mean([getattr(day, name) for day in days])) for name in names}
