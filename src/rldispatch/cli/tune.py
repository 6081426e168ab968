"""``rldispatch tune``: the Optuna auto-tuner, on one machine or as one of many workers.

``--agent`` picks the kind tuned (``pairwise`` by default, or ``dqn``), each with its own search
space; ``optimal_config.json`` is that kind's config, for ``train --agent KIND --config``.
Every worker started with the same ``--storage`` and ``--study`` joins the same study; the
results (``optimal_config.json``, the top-10 table, importances, plots) describe the whole
study and are written to ``--out`` when the worker is done. ``--trials 0`` only writes them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rldispatch.agents.kinds import DEFAULT_KIND, kind_names
from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    non_negative_int,
    positive_int,
    reward_from_args,
    road_network_from_args,
    uncertainty_from_args,
)
from rldispatch.scenarios.presets import PRESETS
from rldispatch.text import plural
from rldispatch.training.tuning_settings import DEFAULT_TRIAL_DAYS

DEFAULT_TRIALS = 20


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tune",
        help=VERBS["tune"],
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    what = parser.add_argument_group("the study (every worker of a study must agree on these)")
    what.add_argument(
        "--agent",
        choices=kind_names(),
        default=DEFAULT_KIND,
        help=f"the agent kind to tune, each with its own search space (default {DEFAULT_KIND})",
    )
    source = what.add_mutually_exclusive_group()
    source.add_argument(
        "--fleets",
        action="store_true",
        help="train on geneva-style days of 5 to 30 drivers (the pairwise default)",
    )
    source.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="train on days of this preset (the dqn default: geneva)",
    )
    what.add_argument(
        "--days",
        "--episodes",
        dest="days",
        type=positive_int,
        help=f"training days per trial (default {DEFAULT_TRIAL_DAYS} unless --minutes is given)",
    )
    what.add_argument(
        "--minutes",
        type=positive_float,
        help="wall time per trial; with --days too, the first reached ends the trial",
    )
    what.add_argument(
        "--eval-days",
        type=positive_int,
        help="evaluation days per evaluation, the first days of the tuning seeds "
        "(default 16 with --fleets, 5 with --preset)",
    )
    what.add_argument(
        "--eval-every",
        type=positive_int,
        help="evaluate and report to the pruner every this many training days "
        "(default a fifth of --days; 10 with --minutes alone)",
    )
    what.add_argument("--seed", type=int, default=0, help="training seed of every trial")
    add_reward_argument(what)
    add_road_network_argument(what)
    add_uncertainty_arguments(parser)
    what.add_argument(
        "--config",
        type=Path,
        help="the kind's config JSON (as train --config reads): the hyperparameters that "
        "are not tuned come from it",
    )
    where = parser.add_argument_group("where the study lives")
    where.add_argument(
        "--storage",
        help="SQLAlchemy URL of the study database, e.g. postgresql+psycopg://user@host/db "
        "(default: the SQLite file OUT/study.db; a plain path is a SQLite file)",
    )
    where.add_argument("--study", default="rldispatch", help="study name (default rldispatch)")
    where.add_argument(
        "--out", type=Path, default=Path("tuning"), help="output folder (default ./tuning)"
    )
    how = parser.add_argument_group("this worker")
    how.add_argument(
        "--trials",
        type=non_negative_int,
        help=f"trials this worker runs (default {DEFAULT_TRIALS}, or no limit when "
        "--budget-trials or --timeout is given; 0: only write the study's results, with "
        "the study's own settings)",
    )
    how.add_argument(
        "--budget-trials",
        type=positive_int,
        help="stop once the study has this many complete + pruned trials, all workers together",
    )
    how.add_argument(
        "--timeout", type=positive_float, help="start no new trial after this many seconds"
    )
    how.add_argument(
        "--n-jobs", type=positive_int, default=1, help="trials run in parallel threads"
    )
    how.add_argument(
        "--pruner",
        choices=("median", "hyperband", "none"),
        default="median",
        help="stop trials that trail the others (default median)",
    )
    how.add_argument(
        "--pruner-startup-trials",
        type=non_negative_int,
        default=4,
        help="median pruner: no pruning before this many trials completed (default 4)",
    )
    how.add_argument(
        "--warmup-evals",
        type=non_negative_int,
        default=1,
        help="median pruner: never prune at a trial's first N evaluations (default 1)",
    )
    how.add_argument(
        "--startup-trials",
        type=non_negative_int,
        default=8,
        help="TPE: random trials before the sampler models the results (default 8)",
    )
    how.add_argument(
        "--heartbeat-s",
        type=positive_int,
        default=30,
        help="a running trial records a heartbeat this often (default 30 s)",
    )
    how.add_argument(
        "--grace-s",
        type=positive_int,
        default=120,
        help="a trial silent this long is failed by the next worker that starts a trial "
        "(default 120 s)",
    )
    how.add_argument(
        "--max-retry",
        type=non_negative_int,
        default=1,
        help="a trial failed that way is queued again with the same parameters up to N "
        "times (default 1)",
    )
    how.add_argument(
        "--tensorboard", action="store_true", help="TensorBoard logs for every trial's training"
    )
    how.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    how.add_argument("--json", type=Path, help="also write the summary JSON here")
    parser.set_defaults(handler=run)


def training_days(args: argparse.Namespace, kind: Any) -> Any:
    """The day source ``--fleets`` / ``--preset`` names, else the kind's own (on
    ``--road-network`` when given)."""
    from rldispatch.training.days import FleetDays, PresetDays, RoadNetworkDays
    from rldispatch.training.tuning_settings import default_days

    road_network = road_network_from_args(args)
    if args.fleets:
        days = FleetDays(selection=0)
    elif args.preset is not None:
        days = PresetDays(args.preset, selection=0)
    else:
        days = default_days(kind)
    return RoadNetworkDays(days, road_network) if road_network is not None else days


def run(args: argparse.Namespace) -> int:
    import optuna

    from rldispatch.agents.config_fields import ConfigError
    from rldispatch.agents.kinds import agent_kind
    from rldispatch.files import atomic_write_json
    from rldispatch.progress import progress_bar
    from rldispatch.training import tuner, tuning_report, tuning_storage
    from rldispatch.training.tuning_settings import (
        HeartbeatSettings,
        PrunerSettings,
        TuneError,
        TuneSettings,
    )

    kind = agent_kind(args.agent)
    base_config = None
    if args.config is not None:
        try:
            base_config = kind.config_type.load(args.config)
        except ConfigError as error:
            raise CliError(f"--config {error}") from error
    n_trials = args.trials
    if n_trials is None and args.budget_trials is None and args.timeout is None:
        n_trials = DEFAULT_TRIALS
    if args.storage:
        url = tuning_storage.storage_url(args.storage)
    else:
        url = tuning_storage.default_storage_url(args.out)
    shown_url = tuning_storage.masked_url(url)
    try:
        settings = TuneSettings(
            agent=kind.name,
            days=training_days(args, kind),
            max_days=args.days,
            max_minutes=args.minutes,
            eval_days=args.eval_days,
            eval_every=args.eval_every,
            seed=args.seed,
            base_config=base_config,
            reward=reward_from_args(args),
            uncertainty=uncertainty_from_args(args),
        )
        heartbeat = HeartbeatSettings(args.heartbeat_s, args.grace_s, args.max_retry)
        pruner = PrunerSettings(args.pruner, args.pruner_startup_trials, args.warmup_evals)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = tuning_storage.open_storage(url, heartbeat)
        if n_trials == 0 and args.study not in optuna.get_all_study_names(storage):
            raise CliError(f"--study {args.study}: no such study in {shown_url}")
        opened = tuning_storage.open_study(
            storage,
            args.study,
            settings,
            pruner,
            sampler_startup_trials=args.startup_trials,
            adopt_settings=n_trials == 0,
        )
    except TuneError as error:
        raise CliError(str(error)) from error

    study, settings = opened.study, opened.settings
    role = "created" if opened.created else "joined"
    print(
        f"{role} study {args.study} ({settings.agent}) in {shown_url} "
        f"({plural(len(study.trials), 'trial')} so far; sampler seed {opened.sampler_seed})",
        file=sys.stderr,
    )
    total = n_trials
    if total is None and args.budget_trials is not None:
        total = max(0, args.budget_trials - tuner.budget_used(study))
    bar = progress_bar(total != 0, total=total, desc="tune", unit="trial", dynamic_ncols=True)

    def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = "-" if trial.value is None else f"{trial.value:.1f}"
        try:
            best = f"{study.best_value:.1f} (trial {study.best_trial.number})"
        except ValueError:
            best = "-"
        bar.write(
            f"trial {trial.number} {trial.state.name.lower()}: {value}; best {best}",
            file=sys.stderr,
        )
        bar.update(1)

    interrupted = False
    worker = None
    # A worker stopped by SIGTERM (a scheduler, a preempted machine) ends like Ctrl-C: its
    # running trial is marked FAIL at once and the results so far are written.
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        worker = tuner.run_worker(
            opened,
            args.out,
            n_trials=n_trials,
            timeout_s=args.timeout,
            n_jobs=args.n_jobs,
            budget_trials=args.budget_trials,
            tensorboard=args.tensorboard,
            callbacks=[show],
        )
    except KeyboardInterrupt:
        interrupted = True
        print("rldispatch tune: stopped; writing the results so far", file=sys.stderr)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
        bar.close()
    if worker is not None and worker.stopped_by_budget:
        print(
            f"the study has reached its budget of {args.budget_trials} complete + pruned trials",
            file=sys.stderr,
        )
    summary = tuning_report.write_outputs(
        study, settings, args.out, url, worker=worker, plots=not args.no_plots
    )
    print(tuning_report.format_summary(summary))
    if summary["top_trials"]:
        print()
        print(Path(summary["files"]["top_trials"]).read_text(encoding="utf-8").split("\n\n", 2)[2])
    if args.json:
        atomic_write_json(args.json, summary)
    if interrupted:
        return 130
    if summary["best_trial"] is None:
        print(
            "rldispatch tune: no trial of the study has completed; no optimal_config.json",
            file=sys.stderr,
        )
        return 1
    print(f"optimal config written to {summary['files']['optimal_config']}")
    return 0
