"""``rldispatch quickstart``: train on Geneva days, compare with the heuristics on held-out days.

Trains the pairwise Q-network (``PairwiseConfig`` defaults: geneva-style days of 5 to 30
drivers; docs/pairwise.md) or, with ``--agent dqn``, the flat DQN (:data:`QUICKSTART_CONFIG`
on geneva days) within ``--minutes``, evaluates its best model and the four baselines on the
same 30 held-out geneva days, prints the table, and leaves under ``--out``::

    report.json          the report (DESIGN.md's contract), with the training summary
    model.safetensors    the best model (as train/best_model.safetensors)
    training_curves.png  reward, loss, epsilon and Q-values during training
    comparison.png       every policy's metrics with 95% CIs, and the paired differences
    routes.png           the learned policy's routes on the first held-out day
    train/               the training run (metrics, checkpoints, TensorBoard)
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.kinds import DEFAULT_KIND, agent_kind, kind_names
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import VERBS
from rldispatch.cli.common import positive_int
from rldispatch.cli.evaluate import baseline_names
from rldispatch.files import atomic_write_bytes, atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.plots import (
    load_training_curves,
    plot_comparison,
    plot_routes,
    plot_training_curves,
    record_routes,
)
from rldispatch.reports.report import build_report, format_table
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.training.days import FleetDays, PresetDays
from rldispatch.training.evaluation import evaluate_policies
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
        "baselines on the same held-out geneva days; print the table and write report, model "
        "and plots under --out.",
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", type=str, help="also write the report JSON here")
    parser.set_defaults(handler=run)


def quickstart_minutes(text: str) -> float:
    value = float(text)
    if not value > EVALUATION_MINUTES:
        raise argparse.ArgumentTypeError(
            f"must be more than {EVALUATION_MINUTES:g} minutes (kept for the evaluation), "
            f"got {text}"
        )
    return value


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    single_threaded_numerics()
    out: Path = args.out
    run_dir = out / "train"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the quickstart always starts afresh
    out.mkdir(parents=True, exist_ok=True)
    training_budget_s = (args.minutes - EVALUATION_MINUTES) * 60.0
    model_path, training = train_model(args, run_dir, training_budget_s)
    model = load_learned_model(model_path, name=args.agent)
    shutil.copyfile(model_path, out / "model.safetensors")

    seeds = list(HELD_OUT_SEEDS[: args.days])
    days = [make_preset(PRESET, seed) for seed in seeds]
    name = model.policy.name
    policies: dict[str, Policy] = {name: model.policy}
    policies |= {other: make_baseline(other, seed=args.seed) for other in baseline_names()}
    env_config = model.env_config_for(days)
    results = evaluate_policies(policies, days, env_config, progress=not args.no_progress)
    pairs = [(name, other) for other in policies if other != name]
    report = build_report(
        f"{PRESET} held-out days",
        seeds,
        results,
        pairs,
        extra={"model": model.info(), "training": training},
    )
    print()
    print(format_table(report))
    print()
    print(verdict(report, name))

    plot_training_curves(
        load_training_curves(run_dir), out / "training_curves.png", title="quickstart training"
    )
    plot_comparison(report, out / "comparison.png")
    plot_routes(record_routes(policies[name], days[0], env_config), out / "routes.png")
    report["wall_time_s"] = time.perf_counter() - started
    atomic_write_json(out / "report.json", report)
    if args.json:
        atomic_write_json(args.json, report)
    atomic_write_bytes(out / "table.txt", (format_table(report) + "\n").encode())
    print(
        f"\nwall time {report['wall_time_s'] / 60:.1f} min; wrote {out}/report.json, "
        f"model.safetensors, training_curves.png, comparison.png, routes.png"
    )
    return 0


def train_model(
    args: argparse.Namespace, run_dir: Path, budget_s: float
) -> tuple[Path, dict[str, Any]]:
    """The quickstart's model of ``--agent`` within ``budget_s``; its best model file.

    pairwise: its default config on geneva-style days of 5 to 30 drivers; dqn:
    :data:`QUICKSTART_CONFIG` on geneva days.
    """
    kind = agent_kind(args.agent)
    if kind.default_days == "fleets":
        config, days = kind.config_type(), FleetDays()
        source = "geneva-style days of 5 to 30 drivers"
    else:
        config, days = QUICKSTART_CONFIG, PresetDays(PRESET)
        source = f"{PRESET} days"
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
    )
    result = train(kind, config, run_dir, days, settings, progress=not args.no_progress)
    print(
        f"trained {result.days} days ({result.decisions} decisions, "
        f"{result.decisions_per_second:.0f} decisions/s) in {result.wall_time_s / 60:.1f} min; "
        f"best model after {result.best_day} days"
    )
    training = {**result.summary(), "config": config.to_dict()}
    return result.best_model_path, training


def verdict(report: dict[str, Any], name: str = "dqn") -> str:
    """Plain sentences: does the learned policy ``name`` beat each baseline, by how much, how
    sure."""
    lines = []
    learned = report["policies"][name]["reward"]["mean"]
    for pair_name, pair in report["paired"].items():
        other = pair_name.removeprefix(f"{name}_vs_")
        mean = pair["reward_diff_mean"]
        baseline = report["policies"][other]["reward"]["mean"]
        if pair["ci95"] is None:
            lines.append(
                f"{name} ({learned:.1f}) against {other} ({baseline:.1f}): paired difference "
                f"{mean:+.1f} per day, not judged ({pair['reason']})"
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
            f"{mean:+.1f} per day, 95% CI {low:+.1f} to {high:+.1f}, p = {pair['p_value']:.2g}"
        )
    return "\n".join(lines)
