"""Where a study lives: its database (any SQLAlchemy URL), and creating or joining it.

One machine or many: a SQLite file by default, PostgreSQL for many workers on many machines.
Workers heartbeat their running trial; a trial whose worker died (``kill -9``, a lost
machine) is marked FAIL by the next worker that starts a trial once the grace period has
passed, and put back in the queue with the same parameters (``max_retry`` times).
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from rldispatch.database_url import mask_database_url
from rldispatch.training.tuning_settings import (
    HeartbeatSettings,
    PrunerSettings,
    TuneError,
    TuneSettings,
)

SETTINGS_ATTR = "rldispatch_settings"
"""Study user attribute holding the settings every worker of the study must share."""


def storage_url(text: str) -> str:
    """A SQLAlchemy URL from ``text``; a plain path (no ``://``) is a SQLite file."""
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    return text


def default_storage_url(out_dir: str | Path) -> str:
    """The default storage: the SQLite file ``study.db`` in the output folder."""
    return storage_url(str(Path(out_dir) / "study.db"))


def masked_url(url: str) -> str:
    """The URL without its passwords (``user:password@`` and a ``password`` query
    parameter such as ``?password=`` or ``?sslpassword=``), for printing and reports."""
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

    :raises TuneError: when the existing study tunes another agent kind or was created with
        other settings.
    """
    created = True
    try:
        optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        created = False
    study = optuna.load_study(study_name=study_name, storage=storage)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise TuneError(f"--study {study_name}: the study exists and minimises; use another name")
    if created:
        study.set_user_attr(SETTINGS_ATTR, settings.to_dict())
    elif adopt_settings and SETTINGS_ATTR in study.user_attrs:
        settings = TuneSettings.from_dict(study.user_attrs[SETTINGS_ATTR])
    else:
        _check_joined_settings(study, study_name, settings.to_dict())
    sampler_seed = settings.seed if created else random.SystemRandom().randrange(2**31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(
            n_startup_trials=sampler_startup_trials, multivariate=True, seed=sampler_seed
        )
    study.pruner = (pruner or PrunerSettings()).build(settings)
    return OpenedStudy(study, created, sampler_seed, settings)


OPTIONAL_SETTINGS = ("reward", "uncertainty")
"""Settings a study stores only when they differ from the defaults."""


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
    stored_agent = stored.get("agent", "dqn")  # a study of an earlier version tuned the flat DQN
    if stored_agent != wanted["agent"]:
        raise TuneError(
            f"--agent {wanted['agent']}: study {study_name} tunes the {stored_agent} agent; "
            f"start this worker with --agent {stored_agent} or choose another --study"
        )
    # The settings stored only when they are not the defaults count when either side has them.
    keys = [*wanted, *(key for key in OPTIONAL_SETTINGS if key in stored and key not in wanted)]
    differing = [key for key in keys if stored.get(key) != wanted.get(key)]
    if differing:
        details = "; ".join(
            f"{key}: study has {_short(stored.get(key))}, this worker {_short(wanted.get(key))}"
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
