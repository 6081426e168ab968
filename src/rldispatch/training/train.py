"""One training loop for every agent kind: act, store, learn, end of day.

A run lives in one folder::

    out_dir/
      config.json              the kind's config of the run
      run.json                 kind, days, seed, budget, evaluation and checkpoint settings
      training_metrics.json    one record per day and per evaluation, and a summary
      best_model.safetensors   the model with the best mean reward on the selection days
      final_model.safetensors  the model at the end of the run
      checkpoints/day_000100.safetensors   a model every ``checkpoint_every_days`` days
      checkpoints/resume.pt    everything needed to go on after a kill (see checkpoint.py)
      tensorboard/             the tags listed in callbacks.py

Each day: the learner acts in the env, the env steps, the learner observes the reward and
learns when a gradient step is due; at the end of the day it stores the day. Every
``eval_every_days`` days (and before the first, and at the end) the greedy policy plays the
selection days and the best model is kept; every ``checkpoint_every_days`` days a checkpoint
is written. :func:`train` with ``resume=True`` goes on from the last checkpoint: with a budget
in days, a resumed run ends with the weights an uninterrupted one would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from rldispatch.agents.kinds import AgentKind, Learner, agent_kind
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json, read_json, remove_unfinished_writes
from rldispatch.rewards import RewardConfig
from rldispatch.sim.noise import Uncertainty
from rldispatch.training.callbacks import Callback, ProgressBar, TensorBoard
from rldispatch.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rldispatch.training.days import RoadNetworkDays, TrainingDays, days_from_description
from rldispatch.training.evaluation import evaluate_policy, summarise_days
from rldispatch.training.threads import single_threaded_numerics

EvaluationHook = Callable[[int, float], None]
"""Called with ``(day, mean selection reward)`` after each evaluation; an exception it
raises (such as ``optuna.TrialPruned``) ends training and propagates."""


class TrainingError(ValueError):
    """A run that cannot start, resume or go on as asked."""


@dataclass(frozen=True)
class RunSettings:
    """How long a run trains and what it does along the way (not the kind's config).

    :param max_days: budget in training days (in total, counting a resumed run's)...
    :param max_seconds: ...and/or in wall time; the first reached ends the run.
    :param eval_every_days: days between evaluations on the selection days (0: never).
    :param checkpoint_every_days: days between checkpoints (0: only at the end).
    :param save_replay_buffer: keep the replay buffer in checkpoints; without it a resumed
        run refills it before its gradient steps start again.
    """

    max_days: int | None = None
    max_seconds: float | None = None
    eval_every_days: int = 20
    checkpoint_every_days: int = 20
    seed: int = 0
    save_replay_buffer: bool = True

    def __post_init__(self) -> None:
        if self.max_days is None and self.max_seconds is None:
            raise TrainingError("a run needs a budget: max_days or max_seconds")
        if self.max_days is not None and self.max_days < 1:
            raise TrainingError(f"max_days: must be at least 1, got {self.max_days}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise TrainingError(f"max_seconds: must be > 0, got {self.max_seconds}")
        if self.eval_every_days < 0 or self.checkpoint_every_days < 0:
            raise TrainingError("eval_every_days and checkpoint_every_days: must be >= 0")


@dataclass(frozen=True)
class RunPaths:
    """Where a run keeps its files."""

    out_dir: Path

    config = property(lambda self: self.out_dir / "config.json")
    run = property(lambda self: self.out_dir / "run.json")
    metrics = property(lambda self: self.out_dir / "training_metrics.json")
    best_model = property(lambda self: self.out_dir / "best_model.safetensors")
    final_model = property(lambda self: self.out_dir / "final_model.safetensors")
    checkpoints = property(lambda self: self.out_dir / "checkpoints")
    resume = property(lambda self: self.out_dir / "checkpoints" / "resume.pt")
    tensorboard = property(lambda self: self.out_dir / "tensorboard")

    def snapshot(self, day: int) -> Path:
        return self.checkpoints / f"day_{day:06d}.safetensors"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    kind: str
    out_dir: Path
    days: int
    decisions: int
    wall_time_s: float
    decisions_per_second: float
    final_model_path: Path
    best_model_path: Path
    metrics_path: Path
    best_eval_reward: float | None
    best_day: int | None
    stopped_by_time_limit: bool
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("out_dir", "final_model_path", "best_model_path", "metrics_path"):
            data[key] = str(data[key])
        return data


def train(
    kind: str | AgentKind,
    config: Any,
    out_dir: str | Path,
    days: TrainingDays,
    settings: RunSettings,
    *,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = True,
    on_evaluation: EvaluationHook | None = None,
    torch_threads: int | None = 1,
    reward: RewardConfig | None = None,
    uncertainty: Uncertainty | None = None,
) -> TrainResult:
    """Train an agent of ``kind`` with ``config`` on ``days`` (see the module docstring).

    :param resume: go on from ``out_dir``'s checkpoint (refused without one); without it an
        ``out_dir`` that holds a run is refused.
    :param torch_threads: threads of PyTorch and BLAS (small networks are fastest on one);
        None leaves them.
    :param reward: the reward weights the agent learns under (default: the defaults); the
        model files record them.
    :param uncertainty: an uncertain day to train and select on (None: the certain day);
        the model files record it.
    """
    if torch_threads is not None:
        single_threaded_numerics(torch_threads)
    kind = agent_kind(kind) if isinstance(kind, str) else kind
    callbacks: list[Callback] = [ProgressBar(progress)]
    if tensorboard:
        callbacks.append(TensorBoard(RunPaths(Path(out_dir)).tensorboard))
    run = TrainingRun(
        kind, config, Path(out_dir), days, settings, callbacks, on_evaluation, reward, uncertainty
    )
    run.start(resume)
    return run.run()


def resume_training(out_dir: str | Path, **options: Any) -> TrainResult:
    """Go on with the run in ``out_dir`` with its own saved kind, config, days and settings.

    :param options: ``progress``, ``tensorboard``, ``on_evaluation``, ``torch_threads``, and
        ``max_days``/``max_seconds`` to extend the budget.
    """
    paths = RunPaths(Path(out_dir))
    if not paths.resume.exists():
        raise TrainingError(
            f"{paths.out_dir}: no checkpoint to resume from (checkpoints/resume.pt is missing)"
        )
    saved = read_json(paths.run)
    kind = agent_kind(saved["agent"])
    config = kind.config_type.from_dict(read_json(paths.config))
    budget = {key: options.pop(key) for key in ("max_days", "max_seconds") if key in options}
    settings = RunSettings(**{**saved["settings"], **budget})
    days = days_from_description(saved["days"])
    saved_env = saved.get("env_config", {})
    reward = RewardConfig(**saved_env.get("reward", {}))
    uncertainty = Uncertainty(**saved_env["uncertainty"]) if saved_env.get("uncertainty") else None
    return train(
        kind,
        config,
        out_dir,
        days,
        settings,
        resume=True,
        reward=reward,
        uncertainty=uncertainty,
        **options,
    )


class TrainingRun:
    """One run; :func:`train` is the way to use it."""

    def __init__(
        self,
        kind: AgentKind,
        config: Any,
        out_dir: Path,
        days: TrainingDays,
        settings: RunSettings,
        callbacks: Sequence[Callback],
        on_evaluation: EvaluationHook | None,
        reward: RewardConfig | None = None,
        uncertainty: Uncertainty | None = None,
    ) -> None:
        if not isinstance(config, kind.config_type):
            raise TrainingError(f"config: a {kind.name} run takes a {kind.config_type.__name__}")
        if settings.eval_every_days and not days.selection_days:
            raise TrainingError("selection days: evaluation needs at least one day")
        self.kind = kind
        self.config = config
        self.paths = RunPaths(out_dir)
        self.days = days
        self.settings = settings
        self.callbacks = list(callbacks)
        self.on_evaluation = on_evaluation
        self.env_config = kind.train_env_config(days.max_drivers())
        if reward is not None:
            self.env_config = replace(self.env_config, reward=reward)
        if uncertainty is not None and uncertainty.active:
            self.env_config = replace(self.env_config, uncertainty=uncertainty)
        self.env = DispatchEnv(preset=None, scenarios=[days.day(0)], config=self.env_config)
        self.env.reset(seed=settings.seed)
        self.learner: Learner = kind.new_learner(config, self.env, settings.seed)
        self.day = 0
        self.elapsed_before_s = 0.0
        self.records: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.best_eval_reward: float | None = None
        self.best_day: int | None = None
        self.resumed = False
        self.stopped_by_time_limit = False
        self.segment_start = time.perf_counter()
        self.segment_decisions = 0

    @property
    def decisions(self) -> int:
        return self.learner.decisions

    # --- setup -----------------------------------------------------------------------------

    def run_document(self) -> dict[str, Any]:
        return {
            "agent": self.kind.name,
            "days": self.days.describe(),
            "settings": asdict(self.settings),
            "env_config": env_config_to_dict(self.env_config),
        }

    def start(self, resume: bool) -> None:
        """Load the checkpoint when resuming, else make sure no run is overwritten."""
        paths = self.paths
        if resume:
            if not paths.resume.exists():
                raise TrainingError(
                    f"{paths.out_dir}: no checkpoint to resume from "
                    "(checkpoints/resume.pt is missing)"
                )
            remove_unfinished_writes(paths.out_dir)  # left by the kill this run resumes from
            self._restore(load_checkpoint(paths.resume))
            self.resumed = True
        elif paths.resume.exists() or paths.metrics.exists() or paths.run.exists():
            raise TrainingError(
                f"{paths.out_dir} already holds a training run: pass --resume to continue it "
                "or choose another --out"
            )
        paths.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(paths.config, self.config.to_dict())
        atomic_write_json(paths.run, self.run_document())

    def _restore(self, state: dict[str, Any]) -> None:
        saved_config = state["config"]
        config = self.config.to_dict()
        if saved_config != config:
            changed = sorted(
                k for k in set(saved_config) | set(config) if saved_config.get(k) != config.get(k)
            )
            raise TrainingError(
                f"--resume: {self.paths.out_dir} was trained with a different config "
                f"(differs in {', '.join(changed)})"
            )
        saved_run = state["run"]
        for key in ("agent", "days", "env_config"):
            if saved_run.get(key) != self.run_document()[key]:
                raise TrainingError(
                    f"--resume: {self.paths.out_dir} was trained with a different {key}"
                )
        if self.settings.max_days is not None and state["day"] > self.settings.max_days:
            raise TrainingError(
                f"--resume: the run is already at day {state['day']}, beyond the budget of "
                f"{self.settings.max_days} days"
            )
        try:
            self.learner.load_state_dict(state["learner"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"{self.paths.resume}: does not fit this run ({error})"
            ) from error
        torch.set_rng_state(state["torch_rng"])
        self.env.np_random.bit_generator.state = state["env_rng"]
        self.day = int(state["day"])
        self.elapsed_before_s = float(state["elapsed_s"])
        self.records = list(state["records"])
        self.evaluations = list(state["evaluations"])
        self.best_eval_reward = state["best_eval_reward"]
        self.best_day = state["best_day"]

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.segment_start = time.perf_counter()
        self.segment_decisions = 0
        for callback in self.callbacks:
            callback.on_run_start(self)
        settings = self.settings
        try:
            if not self.resumed:
                self.learner.pretrain(self.env, self.days.day)
                self.learner.prepare(self.env, self.days.day(0))
                if settings.eval_every_days:
                    self._evaluate()
            while not self._budget_spent():
                record = self._play_day()
                for callback in self.callbacks:
                    callback.on_day_end(self, record)
                if settings.eval_every_days and self.day % settings.eval_every_days == 0:
                    self._evaluate()
                if (
                    settings.checkpoint_every_days
                    and self.day % settings.checkpoint_every_days == 0
                ):
                    self._checkpoint()
            evaluated = self.evaluations and self.evaluations[-1]["day"] == self.day
            if settings.eval_every_days and not evaluated:
                self._evaluate()
            self._checkpoint(final=True)
        finally:
            for callback in self.callbacks:
                callback.on_run_end(self)
        return TrainResult(
            kind=self.kind.name,
            out_dir=self.paths.out_dir,
            days=self.day,
            decisions=self.decisions,
            wall_time_s=self.elapsed_s(),
            decisions_per_second=self.decisions_per_second(),
            final_model_path=self.paths.final_model,
            best_model_path=self.paths.best_model,
            metrics_path=self.paths.metrics,
            best_eval_reward=self.best_eval_reward,
            best_day=self.best_day,
            stopped_by_time_limit=self.stopped_by_time_limit,
            evaluations=list(self.evaluations),
        )

    def _budget_spent(self) -> bool:
        settings = self.settings
        if settings.max_days is not None and self.day >= settings.max_days:
            return True
        if settings.max_seconds is not None and self.elapsed_s() >= settings.max_seconds:
            self.stopped_by_time_limit = True
            return True
        return False

    def _play_day(self) -> dict[str, Any]:
        """One training day: act, step, observe, learn; then store the day."""
        env, learner = self.env, self.learner
        scenario = self.days.day(self.day)
        env.reset(options={"scenario": scenario})
        learner.start_day(env)
        started = time.perf_counter()
        first_decision = learner.decisions
        terminated = env.sim.done
        while not terminated:
            action = learner.act(env)
            _, reward, terminated, _, _ = env.step(action)
            learner.observe(env, action, reward, terminated)
            learner.learn()
        learned = learner.end_day(env)
        self.day += 1
        decisions = learner.decisions - first_decision
        self.segment_decisions += decisions
        if learned["td_loss"] is not None and not math.isfinite(learned["td_loss"]):
            raise TrainingError(
                f"training diverged: the TD loss is {learned['td_loss']} on day {self.day} "
                f"(decision {learner.decisions}); the last good checkpoint is "
                f"{self.paths.resume if self.paths.resume.exists() else 'none'} — lower the "
                "learning rate or the reward scale"
            )
        metrics = env.metrics()
        record = {
            "day": self.day,
            "decision": learner.decisions,
            "decisions": decisions,
            "scenario": scenario.name,
            "drivers": len(scenario.drivers),
            "reward": float(metrics.reward),
            "completion_rate": float(metrics.completion_rate),
            "late_pickup_rate": float(metrics.late_pickup_rate),
            "distance_km": float(metrics.distance_km),
            **learned,
            "seconds": time.perf_counter() - started,
            "wall_time_s": self.elapsed_s(),
            "decisions_per_second": self.decisions_per_second(),
        }
        self.records.append(record)
        return record

    # --- periodic work ---------------------------------------------------------------------

    def _evaluate(self) -> None:
        policy = self.learner.policy(self.kind.name)
        env_config = self.kind.play_env_config(self.env_config, self.days.selection_days)
        figures = summarise_days(evaluate_policy(policy, self.days.selection_days, env_config))
        record = {"day": self.day, "decision": self.decisions, **figures}
        record["wall_time_s"] = self.elapsed_s()
        if self.best_eval_reward is None or figures["reward"] > self.best_eval_reward:
            self.best_eval_reward = figures["reward"]
            self.best_day = self.day
            record["best"] = True
            self.learner.save_model(
                self.paths.best_model, self.env_config, self.days.preset, self.summary()
            )
        self.evaluations.append(record)
        for callback in self.callbacks:
            callback.on_evaluation(self, record)
        if self.on_evaluation is not None:
            self.on_evaluation(self.day, figures["reward"])

    def _checkpoint(self, final: bool = False) -> None:
        """Model, metrics file, then the resume checkpoint (last: it is the commit)."""
        path = self.paths.final_model if final else self.paths.snapshot(self.day)
        self.learner.save_model(path, self.env_config, self.days.preset, self.summary())
        if not self.paths.best_model.exists():  # no evaluation: the final model is the best
            self.learner.save_model(
                self.paths.best_model, self.env_config, self.days.preset, self.summary()
            )
        atomic_write_json(self.paths.metrics, self._metrics_document())
        save_checkpoint(
            self.paths.resume,
            {
                "config": self.config.to_dict(),
                "run": self.run_document(),
                "day": self.day,
                "elapsed_s": self.elapsed_s(),
                "learner": self.learner.state_dict(self.settings.save_replay_buffer),
                "torch_rng": torch.get_rng_state(),
                "env_rng": self.env.np_random.bit_generator.state,
                "records": self.records,
                "evaluations": self.evaluations,
                "best_eval_reward": self.best_eval_reward,
                "best_day": self.best_day,
            },
        )

    # --- figures ---------------------------------------------------------------------------

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.perf_counter() - self.segment_start

    def decisions_per_second(self) -> float:
        elapsed = time.perf_counter() - self.segment_start
        return self.segment_decisions / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        last = self.evaluations[-1] if self.evaluations else None
        trained_on = self.days.named_training_days()
        return {
            "agent": self.kind.name,
            "days": self.day,
            "decisions": self.decisions,
            "wall_time_s": self.elapsed_s(),
            "decisions_per_second": self.decisions_per_second(),
            "best_eval_reward": self.best_eval_reward,
            "best_day": self.best_day,
            "eval_reward": last["reward"] if last else None,
            "selection_days": [day.name for day in self.days.selection_days],
            **({"training_days": trained_on} if trained_on is not None else {}),
            "seed": self.settings.seed,
            "resumed": self.resumed,
            "stopped_by_time_limit": self.stopped_by_time_limit,
            **(
                {"road_network": self.days.road_network}
                if isinstance(self.days, RoadNetworkDays)
                else {}
            ),
        }

    def _metrics_document(self) -> dict[str, Any]:
        return {
            "agent": self.kind.name,
            "config": self.config.to_dict(),
            "run": self.run_document(),
            "summary": self.summary(),
            "days": self.records,
            "evaluations": self.evaluations,
        }
