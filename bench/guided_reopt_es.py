"""``guided-reopt``'s take term (or linear gate) learned from the reward by evolution
strategies (:mod:`rldispatch.agents.guided_reopt.es_learning`), through the product's training
loop, with the settings of the measured run as defaults.

    .venv/bin/python bench/guided_reopt_es.py --terms take --minutes 40 --jobs 1 \
        --out runs/take_es

The same as ``rldispatch train --agent guided-reopt --fleets 5,6,8,9,10 --demand 0.8,1.6
--eval-days 4 --eval-every 6 --config CFG.json`` with ``CFG.json`` the config this script
prints. Training days: geneva-style days from ``TRAINING_SEEDS`` of 5, 6, 8, 9 and 10 drivers
(the held-out sizes left out) with 0.8 to 1.6 times the preset's demand per driver, so
overloaded days are among them; an update (an "iteration") plays ``--days-per-iteration`` days.
Selection days: the same distribution's first ``--selection-days`` days from ``TUNING_SEEDS``,
played every ``--select-every`` iterations; ``best_model.safetensors`` is the best there (the
start, ``reopt``, included). ``--resume`` goes on with a stopped run. The models play in
``bench/guided_reopt_eval.py eval --model``.
"""

from __future__ import annotations

import argparse
import json

from rldispatch.agents.guided_reopt.config import ES_TERMS, GuidedReoptConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.training.days import FleetDays
from rldispatch.training.threads import single_threaded_numerics
from rldispatch.training.train import RunSettings, resume_training, train

TRAINING_FLEETS = (5, 6, 8, 9, 10)
TRAINING_DEMAND = (0.8, 1.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terms", choices=ES_TERMS, default="take")
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--days-per-iteration", type=int, default=2)
    parser.add_argument("--step-size", type=float, default=0.5)
    parser.add_argument("--scale", choices=("reward_std", "pair_rms"), default="reward_std")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--select-every", type=int, default=3)
    parser.add_argument("--selection-days", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--term-scale", type=float, default=15.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="go on with the run in --out")
    parser.add_argument("--out", default="runs/take_es")
    args = parser.parse_args()
    for name in ("minutes",):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name}: must be positive, got {getattr(args, name)}")
    for name in ("iterations", "select_every", "days_per_iteration"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: must be at least 1")
    single_threaded_numerics(1)
    if args.resume:
        result = resume_training(args.out, max_seconds=args.minutes * 60.0)
        print(result.summary())
        return
    config = GuidedReoptConfig(
        terms=args.terms,
        trainer="es",
        hidden=args.hidden,
        term_scale=args.term_scale,
        es_sigma=args.sigma,
        es_pairs=args.pairs,
        es_batch_days=args.days_per_iteration,
        es_step=args.step_size,
        es_scale=args.scale,
        es_jobs=args.jobs,
    )
    print("config:", json.dumps(config.to_dict()), flush=True)
    per = args.days_per_iteration
    settings = RunSettings(
        max_days=args.iterations * per,
        max_seconds=args.minutes * 60.0,
        eval_every_days=args.select_every * per,
        checkpoint_every_days=args.select_every * per,
        seed=args.seed,
    )
    distribution = FleetDayDistribution(fleet_sizes=TRAINING_FLEETS, demand_factors=TRAINING_DEMAND)
    days = FleetDays(distribution, selection=args.selection_days)
    result = train("guided-reopt", config, args.out, days, settings)
    print(result.summary())


if __name__ == "__main__":
    main()
