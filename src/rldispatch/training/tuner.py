"""The auto-tuner: an Optuna study over an agent kind's hyperparameters, with pruning.

Each trial trains an agent of the study's kind (:func:`rldispatch.training.train.train`, the
one training loop) with the hyperparameters the TPE sampler proposes from the kind's search
space (``AgentKind.search_space``), on the study's training days, and scores it by the mean
reward of its greedy policy on fixed evaluation days of ``TUNING_SEEDS`` (never a training
day, never a held-out day of ``evaluate``). Every periodic evaluation is reported to Optuna as
an intermediate value (step = training day), so the pruner stops a trial that trails the
others. The objective is the mean reward at the *last* evaluation, the end of training, so
the score is not picked as the luckiest of several evaluations on the same days.

The evaluation before the first training day is kept with the trial (user attribute
``start_reward``) but not reported: Optuna's median pruner compares a trial's *best* value so
far, and the untrained network's score would stand in for what the trial learns.

Every trial trains with the same seed (the study's): the same training days in the same
order, the same exploration draws, so two trials differ by their hyperparameters only
(common random numbers), and a trial is reproducible from its parameters alone.

The study's settings live in :mod:`~rldispatch.training.tuning_settings`, its database in
:mod:`~rldispatch.training.tuning_storage`, its results in
:mod:`~rldispatch.training.tuning_report`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rldispatch.agents.config_fields import ConfigError
from rldispatch.agents.search_space import Hyperparameter
from rldispatch.training.train import RunSettings, train
from rldispatch.training.tuning_report import WorkerReport, count_states
from rldispatch.training.tuning_settings import TuneSettings
from rldispatch.training.tuning_storage import OpenedStudy

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trials that use up the global budget (a failed trial is retried, so it does not)."""


def suggest_params(trial: optuna.Trial, space: Sequence[Hyperparameter]) -> dict[str, Any]:
    """The value of every hyperparameter of ``space`` the trial proposes."""
    return {parameter.name: parameter.suggest(trial) for parameter in space}


def worker_id() -> str:
    """``host:pid`` of this worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class TrialObjective:
    """Train one agent per trial and return its final mean evaluation reward.

    Training folders go to ``out_dir/trials/<study>/trial_NNNNN`` (models, metrics; the
    resume checkpoint is removed once the trial is over).
    """

    def __init__(
        self, settings: TuneSettings, out_dir: str | Path, study_name: str, tensorboard: bool
    ) -> None:
        self.settings = settings
        self.runs_dir = Path(out_dir) / "trials" / _safe_name(study_name)
        self.tensorboard = tensorboard
        self.run_settings = RunSettings(
            max_days=settings.max_days,
            max_seconds=settings.max_seconds,
            eval_every_days=settings.eval_every,
            checkpoint_every_days=0,
            seed=settings.seed,
            save_replay_buffer=False,
        )

    def __call__(self, trial: optuna.Trial) -> float:
        settings = self.settings
        try:
            config = settings.config_for(suggest_params(trial, settings.space))
        except ConfigError as error:  # a combination the kind's config refuses
            trial.set_user_attr("error", str(error))
            raise
        run_dir = self.runs_dir / f"trial_{trial.number:05d}"
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        if run_dir.exists():  # a folder of an earlier study of the same name: trial numbers repeat
            shutil.rmtree(run_dir)

        def report(day: int, mean_reward: float) -> None:
            if day == 0:  # before training: kept, not reported (see the module docstring)
                trial.set_user_attr("start_reward", mean_reward)
                return
            trial.report(mean_reward, day)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_day", day)
                raise optuna.TrialPruned(f"day {day}: mean reward {mean_reward:.1f}")

        start = time.perf_counter()
        try:
            result = train(
                settings.kind,
                config,
                run_dir,
                settings.days,
                self.run_settings,
                progress=False,
                tensorboard=self.tensorboard,
                on_evaluation=report,
                reward=settings.reward,
                uncertainty=settings.uncertainty,
            )
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        finally:
            trial.set_user_attr("wall_time_s", time.perf_counter() - start)
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        final = result.evaluations[-1]
        trial.set_user_attr("days", result.days)
        trial.set_user_attr("decisions", result.decisions)
        trial.set_user_attr("stopped_by_time_limit", result.stopped_by_time_limit)
        trial.set_user_attr("best_eval_reward", result.best_eval_reward)
        trial.set_user_attr("final_eval", final)
        return float(final["reward"])


def budget_used(study: optuna.Study) -> int:
    """Completed + pruned trials of the study, every worker's."""
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def run_worker(
    opened: OpenedStudy,
    out_dir: str | Path,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    n_jobs: int = 1,
    budget_trials: int | None = None,
    tensorboard: bool = False,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> WorkerReport:
    """Run trials until ``n_trials`` (this worker), ``timeout_s`` or the study's global
    ``budget_trials`` (completed + pruned, all workers) is reached.

    A trial that raises is recorded FAIL and the worker goes on; ``KeyboardInterrupt``
    fails the running trial and propagates.
    """
    study = opened.study
    mine: list[FrozenTrial] = []
    start = time.perf_counter()
    stopped_by_budget = budget_trials is not None and budget_used(study) >= budget_trials
    if not stopped_by_budget and n_trials != 0:
        all_callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
            lambda _study, trial: mine.append(trial)
        ]
        if budget_trials is not None:
            all_callbacks.append(
                optuna.study.MaxTrialsCallback(budget_trials, states=FINISHED_STATES)
            )
        all_callbacks.extend(callbacks)
        objective = TrialObjective(opened.settings, out_dir, study.study_name, tensorboard)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(
                objective,
                n_trials=n_trials,
                timeout=timeout_s,
                n_jobs=n_jobs,
                catch=(ValueError, ArithmeticError, RuntimeError),
                callbacks=all_callbacks,
                gc_after_trial=True,
            )
        stopped_by_budget = budget_trials is not None and budget_used(study) >= budget_trials
    return WorkerReport(
        worker=worker_id(),
        trials=count_states(mine),
        wall_time_s=time.perf_counter() - start,
        stopped_by_budget=stopped_by_budget,
    )
