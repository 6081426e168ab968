"""``rldispatch quickstart``: train on Geneva days, compare with the heuristics on held-out days.

Trains the pairwise Q-network (``PairwiseConfig`` defaults: geneva-style days of 5 to 30
drivers; docs/pairwise.md) or, with ``--agent dqn``, the flat DQN (:data:`QUICKSTART_CONFIG`
on geneva days) within ``--minutes``, evaluates its best model and the four quick baselines
on the same 30 held-out geneva days, prints the table, and leaves under ``--out``::

    report.json          the report (DESIGN.md's contract), with the training summary
    model.safetensors    the best model (as train/best_model.safetensors)
    training_curves.png  reward, loss, epsilon and Q-values during training
    comparison.png       every policy's metrics with 95% CIs, and the paired differences
    routes.png           the learned policy's routes on the first held-out day
    train/               the training run (metrics, checkpoints, TensorBoard)

Rolling-horizon re-optimisation (``reopt``: 4 to 5 s of CPU a geneva day) plays the held-out
days one after the other in a second process while the model trains and the other policies
play, until ``--minutes`` are spent; the days it has not played by then are dropped. When it
played them all it is one more row of the table, paired like the others; else the report's
``reopt`` entry (and a second table) compares the learned policy with it on the days it
played, and its paired difference is on those days alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Sequence
from multiprocessing.pool import IMapIterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.kinds import DEFAULT_KIND, AgentKind, agent_kind, kind_names
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import VERBS
from rldispatch.cli.common import non_negative_int, positive_int
from rldispatch.cli.evaluate import baseline_names
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_bytes, atomic_write_json, describe_folder_size
from rldispatch.parallel import THREAD_VARIABLES
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.reports.plots import (
    QUICKSTART_RUN,
    load_training_curves,
    plot_comparison,
    plot_routes,
    plot_training_curves,
    record_routes,
)
from rldispatch.reports.report import build_report, format_table
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.text import plural
from rldispatch.training.days import FleetDays, PresetDays, TrainingDays
from rldispatch.training.evaluation import PlayedDay, evaluate_policies, evaluate_policy
from rldispatch.training.threads import single_threaded_numerics
from rldispatch.training.train import RunSettings, train

PRESET = "geneva"
QUICKSTART_CONFIG = DQNConfig(
    architecture="pair_scorer",
    hidden_sizes=(64, 64),
    context_size=32,
    gamma=0.9,
    shape_lateness=True,
    shape_cancellations=True,
    learning_rate=2.5e-4,
    learning_starts=1_000,
    train_frequency=2,
    epsilon_decay_steps=20_000,
)
"""The quickstart's hyperparameters (see docs/training.md for how they were chosen)."""
QUICKSTART_EPISODES = 3_000
"""Training days at most; the time budget usually ends training first."""
EVALUATION_MINUTES = 1.5
"""Time kept aside from --minutes for the held-out evaluation and the plots."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help=VERBS["quickstart"],
        description="Train the pairwise DQN (or with --agent dqn the flat one) within "
        "--minutes, then evaluate it and the random, nearest, insertion and matching "
        "baselines on the same held-out geneva days, and re-optimisation (reopt) on as many "
        "of them as it plays in a second process meanwhile; print the table and write "
        "report, model and plots under --out.",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="output folder")
    parser.add_argument(
        "--minutes",
        type=quickstart_minutes,
        default=8.0,
        help=f"time budget, training and evaluation (more than {EVALUATION_MINUTES:g}; "
        f"{EVALUATION_MINUTES:g} are kept for the evaluation)",
    )
    parser.add_argument(
        "--agent",
        choices=kind_names(),
        default=DEFAULT_KIND,
        help="pairwise: the any-fleet pairwise Q-network (default); dqn: the flat network",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run")
    parser.add_argument(
        "--episodes",
        type=positive_int,
        default=QUICKSTART_EPISODES,
        help=f"training days at most (default {QUICKSTART_EPISODES})",
    )
    parser.add_argument(
        "--days", type=positive_int, default=30, help="held-out evaluation days (default 30)"
    )
    parser.add_argument(
        "--reopt-days",
        type=non_negative_int,
        help="re-optimisation (reopt) plays at most this many of the held-out days, in a "
        "second process while the model trains and the other policies play, until --minutes "
        "are spent (default: all; 0: no reopt); the report says how many it played, and "
        "pairs it on those days",
    )
    parser.add_argument(
        "--buffer-checkpoint",
        action="store_true",
        help="keep the replay buffer in train/checkpoints/resume.pt (hundreds of MB; the "
        "quickstart starts afresh each time, so by default it is left out and the run folder "
        "weighs a few MB)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", type=str, help="also write the report JSON here")
    parser.set_defaults(handler=run)


def quickstart_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not EVALUATION_MINUTES < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be more than {EVALUATION_MINUTES:g} minutes (kept for the evaluation), "
            f"got {text}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    single_threaded_numerics()
    out: Path = args.out
    run_dir = out / QUICKSTART_RUN
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the quickstart always starts afresh
    out.mkdir(parents=True, exist_ok=True)
    training_budget_s = (args.minutes - EVALUATION_MINUTES) * 60.0
    kind = agent_kind(args.agent)
    config, training_days, source = training_setup(kind)

    seeds = list(HELD_OUT_SEEDS[: args.days])
    days = [make_preset(PRESET, seed) for seed in seeds]
    reopt_count = len(days) if args.reopt_days is None else min(args.reopt_days, len(days))
    play_config = kind.play_env_config(kind.train_env_config(training_days.max_drivers()), days)
    # reopt plays while the model trains and the others play, until --minutes are spent; the
    # days it has not played by then are dropped (its process is stopped).
    pool = multiprocessing.get_context("spawn").Pool(1, _single_threaded_process)
    try:
        reopt_days = pool.imap(_play_reopt_day, [(day, play_config) for day in days[:reopt_count]])
        if reopt_count:
            print(
                f"re-optimisation (reopt) plays up to {plural(reopt_count, 'held-out day')} in a "
                f"second process while the model trains and the other policies play, for at "
                f"most --minutes {args.minutes:g}"
            )
        model_path, training = train_model(
            args, kind, config, training_days, source, run_dir, training_budget_s
        )
        model = load_learned_model(model_path, name=args.agent)
        shutil.copyfile(model_path, out / "model.safetensors")

        name = model.policy.name
        policies: dict[str, Policy] = {name: model.policy}
        policies |= {other: make_baseline(other, seed=args.seed) for other in baseline_names()}
        env_config = model.env_config_for(days)
        results = evaluate_policies(policies, days, env_config, progress=not args.no_progress)
        reopt_played = played_in_time(reopt_days, reopt_count, started + args.minutes * 60.0)
    finally:
        pool.terminate()
        pool.join()
    if reopt_count:
        print(f"reopt played {len(reopt_played)} of the {plural(len(days), 'held-out day')}")
    if reopt_played and env_config != play_config:  # not expected: reopt's days not paired
        print("reopt left out: the model plays another env than the one reopt played")
        reopt_played = []
    report = comparison_report(name, seeds, results, reopt_played)
    report.update({"model": model.info(), "training": training})
    print()
    print(quickstart_table(report))
    print()
    print(verdict(report, name))
    if "reopt" in report:
        played = f" on the {plural(len(reopt_played), 'day')} it played"
        print(verdict(report["reopt"], name, played))

    plot_training_curves(
        load_training_curves(run_dir),
        out / "training_curves.png",
        title="quickstart training",
    )
    plot_comparison(report, out / "comparison.png")
    plot_routes(record_routes(policies[name], days[0], env_config), out / "routes.png")
    report["wall_time_s"] = time.perf_counter() - started
    atomic_write_json(out / "report.json", report)
    if args.json:
        atomic_write_json(args.json, report)
    atomic_write_bytes(out / "table.txt", (quickstart_table(report) + "\n").encode())
    print(
        f"\nwall time {report['wall_time_s'] / 60:.1f} min; wrote {out}/report.json, "
        f"table.txt, model.safetensors, training_curves.png, comparison.png, routes.png; "
        f"{describe_folder_size(out)}"
    )
    return 0


def _single_threaded_process() -> None:
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    single_threaded_numerics()
    # Progress bars lock with a thread lock here, not a multiprocessing semaphore that a
    # stopped process would leave behind.
    tqdm.set_lock(threading.RLock())


def _play_reopt_day(task: tuple[Scenario, EnvConfig]) -> PlayedDay:
    """``reopt`` (its defaults: deterministic) on one day."""
    day, env_config = task
    return evaluate_policy(ReoptPolicy(), [day], env_config)[0]


def played_in_time(days: IMapIterator, count: int, deadline: float) -> list[PlayedDay]:
    """The first of the ``count`` days of ``days`` (a pool's ``imap``, in order) played by
    ``deadline`` (``time.perf_counter``)."""
    played: list[PlayedDay] = []
    for _ in range(count):
        try:
            played.append(days.next(max(0.0, deadline - time.perf_counter())))
        except multiprocessing.TimeoutError:
            break
    return played


def comparison_report(
    name: str,
    seeds: Sequence[int],
    results: dict[str, list[PlayedDay]],
    reopt: Sequence[PlayedDay],
) -> dict[str, Any]:
    """The report of the learned policy ``name`` against every baseline on the held-out days.

    ``reopt`` played the first ``len(reopt)`` days: all of them, it is one more policy paired
    on every day; fewer, the report's ``reopt`` entry is the report of those days alone (the
    learned policy and reopt, and their paired difference on those days).
    """
    if reopt and len(reopt) == len(seeds):
        results = {**results, "reopt": list(reopt)}
    pairs = [(name, other) for other in results if other != name]
    report = build_report(f"{PRESET} held-out days", seeds, results, pairs)
    if reopt and len(reopt) < len(seeds):
        count = len(reopt)
        report["reopt"] = build_report(
            f"{PRESET} held-out days reopt played (the first {count} of {len(seeds)}; "
            "its paired difference is on these days)",
            list(seeds[:count]),
            {name: list(results[name][:count]), "reopt": list(reopt)},
            [(name, "reopt")],
        )
    return report


GUIDED_REOPT_NOTE = (
    "guided-reopt (reopt with learned terms in its objective) plays as reopt until trained: "
    "the reopt row is its untrained start. Training its take term takes about 30 CPU-minutes, "
    "beyond the quickstart: rldispatch train --agent guided-reopt --config take.json "
    "(docs/guided_reopt.md gives the file and the held-out figures)."
)


def quickstart_table(report: dict[str, Any]) -> str:
    """The table of every policy on the held-out days, then reopt's on the days it played;
    where reopt played, a note on guided-reopt, whose untrained start it is."""
    text = format_table(report)
    if "reopt" in report:
        text += "\n\n" + format_table(report["reopt"])
    if "reopt" in report or "reopt" in report["policies"]:
        text += "\n\n" + GUIDED_REOPT_NOTE
    return text


def training_setup(kind: AgentKind) -> tuple[Any, TrainingDays, str]:
    """The quickstart's config, training days and their description for ``kind``.

    pairwise: its default config on geneva-style days of 5 to 30 drivers; dqn:
    :data:`QUICKSTART_CONFIG` on geneva days.
    """
    if kind.default_days == "fleets":
        return kind.config_type(), FleetDays(), "geneva-style days of 5 to 30 drivers"
    return QUICKSTART_CONFIG, PresetDays(PRESET), f"{PRESET} days"


def train_model(
    args: argparse.Namespace,
    kind: AgentKind,
    config: Any,
    days: TrainingDays,
    source: str,
    run_dir: Path,
    budget_s: float,
) -> tuple[Path, dict[str, Any]]:
    """The quickstart's model of ``kind`` within ``budget_s``; its best model file."""
    print(
        f"training the {kind.name} model on {source} for {budget_s / 60:.1f} minutes "
        f"(of --minutes {args.minutes:g}: {EVALUATION_MINUTES:g} are kept for the held-out "
        f"evaluation and the plots) or {args.episodes} days, whichever comes first; the model "
        f"kept is the best of the evaluations on {len(days.selection_days)} selection days, "
        "the untrained start included ..."
    )
    settings = RunSettings(
        max_days=args.episodes,
        max_seconds=budget_s,
        eval_every_days=20 if kind.default_days == "fleets" else 100,
        checkpoint_every_days=100,
        seed=args.seed,
        save_replay_buffer=args.buffer_checkpoint,
    )
    result = train(kind, config, run_dir, days, settings, progress=not args.no_progress)
    print(
        f"trained {result.days} days ({result.decisions} decisions, "
        f"{result.decisions_per_second:.0f} decisions/s) in {result.wall_time_s / 60:.1f} min; "
        f"best model after {result.best_day} days"
    )
    if result.best_day == 0:
        print(kept_start_note(kind, len(days.selection_days)))
    training = {**result.summary(), "config": config.to_dict()}
    return result.best_model_path, training


def kept_start_note(kind: AgentKind, selection_days: int) -> str:
    """Why the model kept is the untrained start: one sentence."""
    start = (
        "the untrained network already scores each pair by the known part of its reward "
        "(docs/pairwise.md), and "
        if kind.default_days == "fleets"
        else ""
    )
    return (
        f"the model kept is the untrained start: {start}no evaluation during training scored "
        f"higher on the {plural(selection_days, 'selection day')}, so training only confirmed "
        "it (a longer --minutes gives the learned value more time to improve on it)"
    )


def verdict(report: dict[str, Any], name: str = "dqn", days_note: str = "") -> str:
    """Plain sentences: does the learned policy ``name`` beat each baseline, by how much, how
    sure (``days_note`` says on which days, when not all of them)."""
    lines = []
    learned = report["policies"][name]["reward"]["mean"]
    for pair_name, pair in report["paired"].items():
        other = pair_name.removeprefix(f"{name}_vs_")
        mean = pair["reward_diff_mean"]
        baseline = report["policies"][other]["reward"]["mean"]
        if pair["ci95"] is None:
            lines.append(
                f"{name} ({learned:.1f}) against {other} ({baseline:.1f}): paired difference "
                f"{mean:+.1f} per day{days_note}, not judged ({pair['reason']})"
            )
            continue
        low, high = pair["ci95"]
        if low > 0:
            outcome = "beats"
        elif high < 0:
            outcome = "does NOT beat"
        else:
            outcome = "is not distinguishable from"
        lines.append(
            f"{name} ({learned:.1f}) {outcome} {other} ({baseline:.1f}): paired difference "
            f"{mean:+.1f} per day{days_note}, 95% CI {low:+.1f} to {high:+.1f}, "
            f"p = {pair['p_value']:.2g}"
        )
    return "\n".join(lines)
