"""The quick policies on held-out geneva days, certain and uncertain, paired day by day.

    nice -n 10 .venv/bin/python bench/uncertain_day.py [--days 50] [--travel-noise 0.2] \
        [--no-show-rate 0.05] [--model M] [--json bench/uncertain_day.json]

Each policy (by default random, nearest, insertion, matching, and a pairwise model:
``--model``, else the untrained network with its known rewards; ``--policies`` picks others,
``reopt`` among them) plays the same held-out days twice: as
planned, and with each leg's time drawn around its plan and some patients not there (the
same draws for every policy: ``rldispatch.sim.noise``). It prints each policy's mean reward
and late share on both, and the paired difference (uncertain minus certain) with its 95% CI.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.sim.noise import Uncertainty
from rldispatch.training.evaluation import evaluate_policies

QUICK = ("random", "nearest", "insertion", "matching")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--travel-noise", type=float, default=0.2)
    parser.add_argument("--no-show-rate", type=float, default=0.05)
    parser.add_argument("--service-delay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--policies",
        default=",".join((*QUICK, "pairwise")),
        help="comma-separated: baselines (reopt among them) and 'pairwise'",
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.policies.split(",") if name.strip()]
    days = [make_preset("geneva", HELD_OUT_SEEDS.start + k) for k in range(args.days)]
    noise = Uncertainty(args.travel_noise, args.no_show_rate, args.service_delay, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = args.model or save_untrained_model(Path(folder) / "pairwise.safetensors")
        model = load_learned_model(path)
    baselines = [name for name in names if name != "pairwise"]
    policies: dict[str, Any] = {name: make_baseline(name, seed=args.seed) for name in baselines}
    widest = EnvConfig(max_drivers=max(len(d.drivers) for d in days))
    shapes = {name: widest for name in baselines}
    if "pairwise" in names:
        policies["pairwise"] = model.policy
        shapes["pairwise"] = model.env_config_for(days)
    played = {}
    for label, uncertainty in (("certain", None), ("uncertain", noise)):
        configs = {
            name: replace(config, uncertainty=uncertainty) for name, config in shapes.items()
        }
        played[label] = evaluate_policies(policies, days, configs, progress=True, jobs=args.jobs)
    report: dict[str, Any] = {
        "days": args.days,
        "seeds": [HELD_OUT_SEEDS.start, args.days],
        "uncertainty": noise.to_dict(),
        "model": str(args.model) if args.model else "untrained pairwise (known rewards)",
        "policies": {},
    }
    print(
        f"{args.days} held-out geneva days, travel noise {args.travel_noise}, no-show rate "
        f"{args.no_show_rate}, service delay {args.service_delay}"
    )
    print(
        f"{'policy':10s} {'reward certain':>15s} {'uncertain':>10s} {'diff (95% CI)':>28s} "
        f"{'late certain':>13s} {'uncertain':>10s} {'no-shows/day':>13s}"
    )
    for name in policies:
        certain, uncertain = played["certain"][name], played["uncertain"][name]
        reward_c = [d.reward for d in certain]
        reward_u = [d.reward for d in uncertain]
        late_c = [d.late_pickup_rate for d in certain]
        late_u = [d.late_pickup_rate for d in uncertain]
        diff = paired_difference(reward_u, reward_c)
        late_diff = paired_difference(late_u, late_c)
        entry = {
            "reward_certain": mean_ci(reward_c),
            "reward_uncertain": mean_ci(reward_u),
            "reward_diff": diff,
            "late_certain": mean_ci(late_c),
            "late_uncertain": mean_ci(late_u),
            "late_diff": late_diff,
            "no_shows_per_day": float(np.mean([d.no_shows for d in uncertain])),
            "completion_certain": float(np.mean([d.completion_rate for d in certain])),
            "completion_uncertain": float(np.mean([d.completion_rate for d in uncertain])),
        }
        report["policies"][name] = entry
        low, high = diff["ci95"]
        print(
            f"{name:10s} {np.mean(reward_c):15.1f} {np.mean(reward_u):10.1f} "
            f"{diff['reward_diff_mean']:+10.1f} [{low:+7.1f}, {high:+7.1f}] "
            f"{np.mean(late_c):12.1%} {np.mean(late_u):10.1%} "
            f"{entry['no_shows_per_day']:13.1f}"
        )
    report["load_average"] = os.getloadavg()
    if args.json:
        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
