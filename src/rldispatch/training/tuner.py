"""The auto-tuner: an Optuna study over the DQN's hyperparameters, with pruning.

Each trial trains a DQN (:func:`rldispatch.training.train.train`) with the hyperparameters
the TPE sampler proposes, on training days drawn from ``TRAINING_SEEDS``, and scores it by
the mean reward of its greedy policy on fixed evaluation days of ``TUNING_SEEDS`` (never a
training day, never a held-out day of ``evaluate``). Every periodic evaluation is reported to
Optuna as an intermediate value (step = episode), so the pruner stops a trial that trails the
others. The objective is the mean reward at the *last* evaluation, the end of training, so
the score is not picked as the luckiest of several evaluations on the same days.

Every trial trains with the same seed (the study's): the same training days in the same
order, the same exploration draws, so two trials differ by their hyperparameters only
(common random numbers), and a trial is reproducible from its parameters alone.

The search space is data: :data:`SEARCH_SPACE` is the table of the 14 hyperparameters with
their ranges; ``docs/tuning.md`` prints :func:`search_space_markdown` verbatim (a test checks
that the two agree).

One machine or many: the study lives in any SQLAlchemy database (a SQLite file by default,
PostgreSQL for many workers on many machines). Workers heartbeat their running trial; a trial
whose worker died (``kill -9``, a lost machine) is marked FAIL by the next worker that starts
a trial once the grace period has passed, and put back in the queue with the same parameters
(``max_retry`` times).
"""

from __future__ import annotations

import io
import math
import os
import random
import re
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rldispatch.agents.dqn.config import DQNConfig, save_config
from rldispatch.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from rldispatch.training.train import train, tuning_days

SETTINGS_ATTR = "rldispatch_settings"
"""Study user attribute holding the settings every worker of the study must share."""
TOP_TRIALS = 10
STEP_ESTIMATE_DAYS = 5


class TuneError(ValueError):
    """A study that cannot be opened or joined as asked."""


# --- the search space --------------------------------------------------------------------


@dataclass(frozen=True)
class Hyperparameter:
    """One tuned hyperparameter: its Optuna distribution and how it sets :class:`DQNConfig`.

    A numeric parameter has ``low``/``high`` (``log``: sampled uniformly in log space;
    ``integer``: whole numbers); a categorical one has ``choices``. ``to_config(value,
    trial_steps)`` turns the sampled value into DQNConfig fields (default: the field of the
    same name); ``trial_steps`` is the expected number of env steps of a trial's training.
    """

    name: str
    label: str
    help: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    to_config: Callable[[Any, int], dict[str, Any]] | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def config_fields(self, value: Any, trial_steps: int) -> dict[str, Any]:
        return self.to_config(value, trial_steps) if self.to_config else {self.name: value}

    def range_text(self) -> str:
        if self.choices is not None:
            return ", ".join(_format_value(choice) for choice in self.choices)
        scale = "log-uniform" if self.log else "uniform"
        kind = "integer " if self.integer else ""
        return f"{_format_value(self.low)} to {_format_value(self.high)}, {kind}{scale}"

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in the study, so workers can check they agree)."""
        if self.choices is not None:
            return {"name": self.name, "choices": list(self.choices)}
        return {
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "integer": self.integer,
        }


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and (abs(value) < 1e-3 or abs(value) >= 1e5) and value != 0:
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    if isinstance(value, int) and value >= 1_000:
        return f"{value:_}".replace("_", " ")
    return str(value)


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


def share_of_steps(field_name: str) -> Callable[[float, int], dict[str, Any]]:
    """A parameter sampled as a share of the trial's training steps, set in env steps."""

    def to_config(share: float, trial_steps: int) -> dict[str, Any]:
        return {field_name: max(1, round(share * trial_steps))}

    return to_config


SEARCH_SPACE: tuple[Hyperparameter, ...] = (
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


def search_space_markdown(space: Sequence[Hyperparameter] = SEARCH_SPACE) -> str:
    """The search space as the Markdown table that ``docs/tuning.md`` shows."""
    lines = [
        "| # | parameter | range | what it is |",
        "| --- | --- | --- | --- |",
    ]
    for index, parameter in enumerate(space, start=1):
        lines.append(
            f"| {index} | `{parameter.name}` | {parameter.range_text()} | {parameter.help} |"
        )
    return "\n".join(lines)


def config_from_params(
    params: dict[str, Any],
    trial_steps: int,
    base: DQNConfig | None = None,
    space: Sequence[Hyperparameter] = SEARCH_SPACE,
) -> DQNConfig:
    """The :class:`DQNConfig` of a trial of ``trial_steps`` expected training steps:
    ``base`` with the sampled parameters set."""
    values: dict[str, Any] = {}
    for parameter in space:
        if parameter.name in params:
            values.update(parameter.config_fields(params[parameter.name], trial_steps))
    return replace(base or DQNConfig(), **values)


def suggest_params(trial: optuna.Trial, space: Sequence[Hyperparameter] = SEARCH_SPACE) -> dict:
    return {parameter.name: parameter.suggest(trial) for parameter in space}


# --- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneSettings:
    """What a trial is: the settings every worker of one study must share.

    :param preset: training and evaluation days are days of this preset.
    :param episodes: training days per trial.
    :param eval_days: evaluation days (the first of ``TUNING_SEEDS``).
    :param eval_every: evaluate (and report to the pruner) every this many episodes, and at
        the end; default: a fifth of ``episodes``.
    :param seed: training seed of every trial.
    :param base_config: the hyperparameters that are not tuned come from here.
    """

    preset: str = "geneva"
    episodes: int = 30
    eval_days: int = 5
    eval_every: int | None = None
    seed: int = 0
    base_config: DQNConfig = field(default_factory=DQNConfig)
    space: tuple[Hyperparameter, ...] = SEARCH_SPACE

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise TuneError(f"episodes: must be at least 1, got {self.episodes}")
        if self.eval_days < 1:
            raise TuneError(f"eval_days: must be at least 1, got {self.eval_days}")
        if self.eval_every is None:
            object.__setattr__(self, "eval_every", max(1, self.episodes // 5))
        if self.eval_every < 1:
            raise TuneError(f"eval_every: must be at least 1, got {self.eval_every}")

    @property
    def steps_per_episode(self) -> int:
        """Expected env steps of a training day: a day takes about one decision per booking
        (an assignment, or a wait that moves the clock), so the mean bookings of the first
        five tuning days."""
        days = tuning_days(self.preset, STEP_ESTIMATE_DAYS)
        return round(sum(len(day.bookings) for day in days) / len(days))

    @property
    def trial_steps(self) -> int:
        """Expected env steps of a trial's training: what the ``*_share`` parameters scale."""
        return self.episodes * self.steps_per_episode

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneSettings:
        """The settings stored in a study (see :meth:`to_dict`)."""
        stored_space = data.get("search_space")
        if stored_space != [parameter.describe() for parameter in SEARCH_SPACE]:
            raise TuneError("the study was created with another search space than this version's")
        return cls(
            preset=data["preset"],
            episodes=int(data["episodes"]),
            eval_days=len(data["eval_days"]),
            eval_every=int(data["eval_every"]),
            seed=int(data["seed"]),
            base_config=DQNConfig.from_dict(data["base_config"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "episodes": self.episodes,
            "eval_days": [day.name for day in tuning_days(self.preset, self.eval_days)],
            "eval_every": self.eval_every,
            "seed": self.seed,
            "trial_steps": self.trial_steps,
            "base_config": self.base_config.to_dict(),
            "search_space": [parameter.describe() for parameter in self.space],
            "objective": "mean reward on the evaluation days at the end of training",
        }


@dataclass(frozen=True)
class PrunerSettings:
    """The pruner of one worker (workers may differ: pruning is decided by each worker).

    :param kind: ``median``, ``hyperband`` or ``none``.
    :param startup_trials: ``median``: no pruning until this many trials have completed.
    :param warmup_evals: no pruning at a trial's first ``warmup_evals`` evaluations (the
        first ones, with epsilon still high, say little).
    """

    kind: str = "median"
    startup_trials: int = 4
    warmup_evals: int = 1

    def build(self, settings: TuneSettings) -> optuna.pruners.BasePruner:
        if self.kind == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.startup_trials,
                n_warmup_steps=self.warmup_evals * settings.eval_every
                + (1 if self.warmup_evals else 0),
            )
        if self.kind == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=settings.eval_every,
                max_resource=settings.episodes,
                reduction_factor=3,
            )
        if self.kind == "none":
            return optuna.pruners.NopPruner()
        raise TuneError(f"pruner: unknown pruner {self.kind!r}; choose median, hyperband or none")


@dataclass(frozen=True)
class HeartbeatSettings:
    """Heartbeat of running trials (seconds) and what happens to a trial whose worker died.

    :param interval_s: a running trial records a heartbeat this often.
    :param grace_s: a RUNNING trial without a heartbeat for this long is failed by the next
        worker that starts a trial.
    :param max_retry: a failed-by-heartbeat trial is queued again with the same parameters
        up to this many times.
    """

    interval_s: int = 30
    grace_s: int = 120
    max_retry: int = 1

    def __post_init__(self) -> None:
        if self.interval_s < 1 or self.grace_s < 1:
            raise TuneError("heartbeat: interval and grace period must be at least 1 second")
        if self.grace_s <= self.interval_s:
            raise TuneError(
                f"heartbeat: the grace period ({self.grace_s} s) must be longer than the "
                f"heartbeat interval ({self.interval_s} s), or live trials would be failed"
            )
        if self.max_retry < 0:
            raise TuneError(f"max_retry: must be >= 0, got {self.max_retry}")


# --- storage and study -------------------------------------------------------------------


def storage_url(text: str) -> str:
    """A SQLAlchemy URL from ``text``; a plain path (no ``://``) is a SQLite file."""
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    return text


def default_storage_url(out_dir: str | Path) -> str:
    """The default storage: the SQLite file ``study.db`` in the output folder."""
    return storage_url(str(Path(out_dir) / "study.db"))


def masked_url(url: str) -> str:
    """The URL without its password, for printing and reports."""
    from rldispatch.database_url import mask_database_url

    return mask_database_url(url)


def open_storage(url: str, heartbeat: HeartbeatSettings) -> optuna.storages.RDBStorage:
    """The study database, with heartbeats and the retry of trials whose worker died.

    :raises TuneError: when the URL is malformed or the database does not answer.
    """
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

    sqlite = url.startswith("sqlite")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # A worker uses a connection for the study and one for its heartbeat thread: a small pool
    # keeps many workers on one server under its connection limit.
    engine_kwargs = {} if sqlite else {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}
    last_error: Exception | None = None
    # Workers starting together on an empty database race to create Optuna's tables: the
    # loser sees an integrity error (or, on SQLite, a locked database) and tries again.
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat.interval_s,
                    grace_period=heartbeat.grace_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=heartbeat.max_retry
                    ),
                )
        except (ArgumentError, NoSuchModuleError, ValueError) as error:
            raise TuneError(
                f"--storage {masked_url(url)}: not a usable database URL ({error})"
            ) from error
        except SQLAlchemyError as error:
            last_error = error
            if isinstance(error, OperationalError) and not sqlite:
                break  # the server refused or did not answer: no point in waiting
            time.sleep(0.5 + random.random() * (attempt + 1))
    first_line = str(last_error).strip().splitlines()[0] if last_error else ""
    raise TuneError(f"--storage {masked_url(url)}: the database does not answer ({first_line})")


@dataclass
class OpenedStudy:
    """A study this worker created or joined, and the seed of its sampler."""

    study: optuna.Study
    created: bool
    sampler_seed: int
    settings: TuneSettings


def open_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    settings: TuneSettings,
    pruner: PrunerSettings | None = None,
    sampler_startup_trials: int = 8,
    adopt_settings: bool = False,
) -> OpenedStudy:
    """Create the study, or join it if it exists (then its settings must match ours, or with
    ``adopt_settings`` they replace ours: for a worker that only reports on the study).

    The worker that creates the study seeds its TPE sampler with ``settings.seed``, so a
    one-machine run is reproducible; a worker that joins an existing study draws a fresh
    sampler seed, so workers started with the same command do not propose the same trials.

    :raises TuneError: when the existing study was created with other settings.
    """
    wanted = settings.to_dict()
    created = True
    try:
        optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        created = False
    sampler_seed = settings.seed if created else random.SystemRandom().randrange(2**31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=sampler_startup_trials, multivariate=True, seed=sampler_seed
        )
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=(pruner or PrunerSettings()).build(settings),
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise TuneError(f"--study {study_name}: the study exists and minimises; use another name")
    if created:
        study.set_user_attr(SETTINGS_ATTR, wanted)
    elif adopt_settings and SETTINGS_ATTR in study.user_attrs:
        settings = TuneSettings.from_dict(study.user_attrs[SETTINGS_ATTR])
    else:
        _check_joined_settings(study, study_name, wanted)
    return OpenedStudy(study, created, sampler_seed, settings)


def _check_joined_settings(study: optuna.Study, study_name: str, wanted: dict) -> None:
    stored = None
    for _ in range(50):  # a worker that created the study a moment ago may not have set it yet
        stored = study.user_attrs.get(SETTINGS_ATTR)
        if stored is not None:
            break
        time.sleep(0.2)
    if stored is None:
        study.set_user_attr(SETTINGS_ATTR, wanted)
        return
    differing = [key for key in wanted if stored.get(key) != wanted[key]]
    if differing:
        details = "; ".join(
            f"{key}: study has {_short(stored.get(key))}, this worker {_short(wanted[key])}"
            for key in differing
        )
        raise TuneError(
            f"--study {study_name}: the study exists with other settings ({details}); start "
            "this worker with the study's settings or choose another --study"
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def delete_study(storage: optuna.storages.BaseStorage | str, study_name: str) -> None:
    optuna.delete_study(study_name=study_name, storage=storage)


# --- the objective -----------------------------------------------------------------------


def worker_id() -> str:
    """``host:pid`` of this worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class TrialObjective:
    """Train one DQN per trial and return its final mean evaluation reward.

    Training folders go to ``out_dir/trials/<study>/trial_NNNNN`` (models, metrics; the
    resume checkpoint is removed once the trial is over).
    """

    def __init__(
        self, settings: TuneSettings, out_dir: str | Path, study_name: str, tensorboard: bool
    ) -> None:
        self.settings = settings
        self.runs_dir = Path(out_dir) / "trials" / _safe_name(study_name)
        self.eval_days = tuning_days(settings.preset, settings.eval_days)
        self.tensorboard = tensorboard

    def __call__(self, trial: optuna.Trial) -> float:
        settings = self.settings
        params = suggest_params(trial, settings.space)
        config = config_from_params(
            params, settings.trial_steps, settings.base_config, settings.space
        )
        run_dir = self.runs_dir / f"trial_{trial.number:05d}"
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        if run_dir.exists():  # a folder of an earlier study of the same name: trial numbers repeat
            shutil.rmtree(run_dir)

        def report(episode: int, mean_reward: float) -> None:
            trial.report(mean_reward, episode)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_episode", episode)
                raise optuna.TrialPruned(f"episode {episode}: mean reward {mean_reward:.1f}")

        start = time.perf_counter()
        try:
            result = train(
                config,
                run_dir,
                settings.episodes,
                preset=settings.preset,
                seed=settings.seed,
                eval_days=self.eval_days,
                eval_every=settings.eval_every,
                checkpoint_every=0,
                progress=False,
                on_evaluation=report,
                save_replay_buffer=False,
                tensorboard=self.tensorboard,
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
        trial.set_user_attr("total_steps", result.total_steps)
        trial.set_user_attr("best_eval_reward", result.best_eval_reward)
        trial.set_user_attr("final_eval", final)
        return float(final["reward"])


# --- running a worker --------------------------------------------------------------------

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trials that use up the global budget (a failed trial is retried, so it does not)."""


@dataclass
class WorkerReport:
    """What this worker did."""

    worker: str
    trials: dict[str, int]
    wall_time_s: float
    stopped_by_budget: bool


def count_states(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    counts["total"] = sum(counts.values())
    return counts


def budget_used(study: optuna.Study) -> int:
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


# --- outputs -----------------------------------------------------------------------------


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best first (ties: the earlier trial first)."""
    complete = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trial.value is not None and math.isfinite(trial.value)
    ]
    return sorted(complete, key=lambda trial: (-trial.value, trial.number))


def trial_config(trial: FrozenTrial, settings: TuneSettings) -> DQNConfig:
    """The DQNConfig a trial trained with."""
    stored = trial.user_attrs.get("config")
    if stored is not None:
        return DQNConfig.from_dict(stored)
    return config_from_params(
        trial.params, settings.trial_steps, settings.base_config, settings.space
    )


def param_importances(study: optuna.Study) -> dict[str, Any]:
    """Optuna's parameter importances (PED-ANOVA in Optuna 5), or why there are none."""
    if len(ranked_trials(study)) < 2:
        return {"error": "fewer than two completed trials"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"values": {name: float(value) for name, value in values.items()}}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return _format_value(value)


def top_trials_markdown(
    trials: Sequence[FrozenTrial], space: Sequence[Hyperparameter] = SEARCH_SPACE
) -> str:
    """The best trials as a Markdown table: rank, trial, reward, then every parameter."""
    header = ["rank", "trial", "reward"] + [parameter.label for parameter in space]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for rank, trial in enumerate(trials, start=1):
        cells = [str(rank), str(trial.number), f"{trial.value:.1f}"]
        cells += [_cell(trial.params.get(parameter.name, "")) for parameter in space]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _trial_record(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "params": trial.params,
        "worker": trial.user_attrs.get("worker"),
        "intermediate_values": {str(step): v for step, v in trial.intermediate_values.items()},
        "wall_time_s": trial.user_attrs.get("wall_time_s"),
    }


def _save_figure(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def write_plots(study: optuna.Study, out_dir: Path, importances: dict[str, Any]) -> dict[str, str]:
    """PNG plots: optimisation history, learning curves of every trial, importances."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    files: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = optuna_plots.plot_optimization_history(study)
        axes.set_ylabel("mean evaluation reward")
        files["optimization_history"] = str(
            _save_figure(axes.figure, out_dir / "optimization_history.png")
        )
        axes = optuna_plots.plot_intermediate_values(study)
        axes.set_xlabel("episode")
        axes.set_ylabel("mean evaluation reward")
        files["intermediate_values"] = str(
            _save_figure(axes.figure, out_dir / "intermediate_values.png")
        )
    values = importances.get("values")
    if values:
        names = list(values)[::-1]
        figure, axes = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.2))
        axes.barh(names, [values[name] for name in names], color="tab:blue")
        axes.set_xlabel("importance (share of the objective's variation)")
        axes.set_title(f"Parameter importances, study {study.study_name}")
        files["param_importances_plot"] = str(
            _save_figure(figure, out_dir / "param_importances.png")
        )
    return files


def write_outputs(
    study: optuna.Study,
    settings: TuneSettings,
    out_dir: str | Path,
    storage: str,
    worker: WorkerReport | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Write the study's results into ``out_dir`` (each file atomically) and return the
    summary (also written as ``tuning_summary.json``).

    Files: ``optimal_config.json`` (the best trial's :class:`DQNConfig`, for
    ``train --config``), ``top_trials.md``, ``param_importances.json``,
    ``optimization_history.png``, ``intermediate_values.png``, ``param_importances.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    ranked = ranked_trials(study)
    top = ranked[:TOP_TRIALS]
    importances = param_importances(study)
    files: dict[str, str] = {}
    best: dict[str, Any] | None = None
    if ranked:
        best_trial = ranked[0]
        config = trial_config(best_trial, settings)
        files["optimal_config"] = str(save_config(out_dir / "optimal_config.json", config))
        best = {**_trial_record(best_trial), "config": config.to_dict()}
    files["top_trials"] = str(
        atomic_write_text(
            out_dir / "top_trials.md",
            f"# Top {len(top)} trials of study {study.study_name}\n\n"
            f"Reward: mean reward on {settings.eval_days} evaluation days after "
            f"{settings.episodes} training episodes.\n\n"
            + top_trials_markdown(top, settings.space)
            + "\n",
        )
    )
    files["param_importances"] = str(
        atomic_write_json(out_dir / "param_importances.json", importances)
    )
    if plots and ranked:  # plots of a study with no completed trial say nothing
        files.update(write_plots(study, out_dir, importances))
    summary = {
        "study": study.study_name,
        "storage": masked_url(storage),
        "direction": "maximize",
        "settings": settings.to_dict(),
        "trials": count_states(trials),
        "best_trial": best,
        "top_trials": [_trial_record(trial) for trial in top],
        "importances": importances,
        "this_worker": None
        if worker is None
        else {
            "worker": worker.worker,
            "trials": worker.trials,
            "wall_time_s": worker.wall_time_s,
            "stopped_by_budget": worker.stopped_by_budget,
        },
        "files": files,
    }
    files["summary"] = str(out_dir / "tuning_summary.json")
    atomic_write_json(out_dir / "tuning_summary.json", summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few printed lines and the top-trials table."""
    counts = summary["trials"]
    lines = [
        f"study {summary['study']} ({summary['storage']}): {counts['total']} trials, "
        f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed, "
        f"{counts['running']} running, {counts['waiting']} waiting",
    ]
    worker = summary.get("this_worker")
    if worker:
        mine = worker["trials"]
        lines.append(
            f"this worker: {mine['total']} trials ({mine['complete']} complete, "
            f"{mine['pruned']} pruned, {mine['fail']} failed) in {worker['wall_time_s']:.0f} s"
        )
    best = summary.get("best_trial")
    if best:
        lines.append(f"best: trial {best['number']}, mean evaluation reward {best['value']:.1f}")
    importances = summary["importances"].get("values")
    if importances:
        ranked = ", ".join(f"{name} {value:.2f}" for name, value in list(importances.items())[:5])
        lines.append(f"most important: {ranked}")
    return "\n".join(lines)
