"""``guided-reopt``'s terms learned from the reward by evolution strategies
(:mod:`rldispatch.agents.guided_reopt.evolution`), on training days only.

    .venv/bin/python bench/guided_reopt_es.py --heads value --minutes 30 --jobs 2 \
        --out runs/guided_es

Training days: geneva-style days from ``TRAINING_SEEDS`` of 5, 6, 8, 9 and 10 drivers
(the held-out sizes left out) with 0.8 to 1.6 times the preset's demand per driver, so
overloaded days are among them; iteration k plays days ``k * D`` to ``k * D + D - 1`` of that
distribution. Selection days: the same distribution's first ``--selection-days`` days from
``TUNING_SEEDS``. Writes ``best_model.safetensors`` (the best on the selection days, the start,
``reopt``, included), ``final_model.safetensors`` and ``history.json`` under ``--out``; the models
play in ``bench/guided_reopt_eval.py eval --model``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rldispatch.agents.guided_reopt.evolution import (
    EvolutionSettings,
    evolve,
    set_vector,
    settings_dict,
)
from rldispatch.agents.guided_reopt.model_file import GuidedReoptMetadata, save_guided_model
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.training.threads import single_threaded_numerics

TRAINING_FLEETS = (5, 6, 8, 9, 10)
TRAINING_DEMAND = (0.8, 1.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", default="value", help="comma-separated: prize, value")
    parser.add_argument("--sigma", type=float, default=0.2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--days-per-iteration", type=int, default=2)
    parser.add_argument("--step-size", type=float, default=0.5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--select-every", type=int, default=2)
    parser.add_argument("--selection-days", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--term-scale", type=float, default=15.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/guided_es")
    args = parser.parse_args()
    if args.minutes <= 0:
        raise SystemExit(f"--minutes: must be positive, got {args.minutes}")
    heads = tuple(head.strip() for head in args.heads.split(",") if head.strip())
    settings = EvolutionSettings(
        heads=heads,
        sigma=args.sigma,
        pairs=args.pairs,
        days_per_iteration=args.days_per_iteration,
        step_size=args.step_size,
        iterations=args.iterations,
        max_seconds=args.minutes * 60.0,
        select_every=args.select_every,
        jobs=args.jobs,
        seed=args.seed,
    )
    single_threaded_numerics(1)
    torch.manual_seed(args.seed)
    network = TermNetwork(hidden=args.hidden, terms=heads, term_scale=args.term_scale)
    network.requires_grad_(False)
    distribution = FleetDayDistribution(fleet_sizes=TRAINING_FLEETS, demand_factors=TRAINING_DEMAND)
    per = args.days_per_iteration
    result = evolve(
        network,
        lambda k: distribution.days(k * per, per),
        distribution.tuning_days(args.selection_days),
        settings,
        log=lambda line: print(line, flush=True),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"settings": settings_dict(settings), **result.summary()}
    for name, vector in (("best_model", result.best_vector), ("final_model", result.final_vector)):
        set_vector(network, heads, vector)
        metadata = GuidedReoptMetadata(
            hidden=args.hidden,
            terms=list(heads),
            term_scale=args.term_scale,
            hyperparameters={"trainer": "evolution", **settings_dict(settings)},
            training_summary={k: v for k, v in summary.items() if k != "history"},
        )
        save_guided_model(out / f"{name}.safetensors", network, metadata)
    atomic_write_json(out / "history.json", summary)
    print(
        f"best on the selection days: iteration {result.best_iteration} "
        f"({result.best_selection_reward:.1f} against the start's "
        f"{result.start_selection_reward:.1f}); {len(result.history)} iterations in "
        f"{result.wall_time_s / 60:.1f} min; models under {out}"
    )


if __name__ == "__main__":
    main()
