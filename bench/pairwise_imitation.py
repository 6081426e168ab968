"""Learning from an expert (DAgger) against the untrained start, on held-out days.

    .venv/bin/python bench/pairwise_imitation.py [--imitation-days 24] [--rounds 2] \
        [--target driver] [--plans runs/imitation-plans] \
        [--variant "imitation + RL=runs/imitation-rl/best_model.safetensors"] ... \
        [--days 21] [--json runs/pairwise/imitation.json]

It builds the untrained start (the known-reward network: each pair scored by its known shaped
reward), trains a copy of it by DAgger on the hindsight plans of the first training days
(:mod:`rldispatch.agents.pairwise.imitation_loop`; ``--plans`` keeps the plans so a second
run reuses them; ``--search lookahead`` imitates the lookahead expert instead, which needs no
plan),
and plays both and every ``--variant`` model file on the same held-out days (fleets
of 7, 13 and 24 drivers). Each line gives the mean reward, completion and late rate and the
paired reward difference to the untrained start with its 95% CI.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from variants import compare_variants

from rldispatch.agents.pairwise.agent import PairDQNAgent
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.imitation_loop import HindsightPlans, ImitationSettings, imitate
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import (
    HELD_OUT_FLEET_SIZES,
    FleetDayDistribution,
    held_out_days,
)
from rldispatch.training.evaluation import evaluate_policy

START = "untrained start (known rewards only)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--imitation-days", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=3.0)
    parser.add_argument("--target", default="driver", choices=("driver", "action"))
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--search", default="hindsight", choices=("hindsight", "local", "lookahead")
    )
    parser.add_argument("--candidates", type=int, default=3, help="lookahead: pairs per state")
    parser.add_argument("--label-every", type=int, default=1, help="label one decision in N")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--anchor", type=float, default=0.0)
    parser.add_argument("--plans", default=None, help="folder keeping the hindsight plans")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="runs/pairwise/imitation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = PairwiseConfig()
    known = TrainingReward(RewardConfig(), 1.0, config.reward_scale).known_reward()
    start = PairDQNAgent(config, seed=args.seed, known_reward=known)
    policies: dict[str, Any] = {START: PairwisePolicy(start.target_network, name=START)}
    report: dict[str, Any] = {"variants": {}}
    if args.imitation_days:
        agent = PairDQNAgent(config, seed=args.seed, known_reward=known)
        settings = ImitationSettings(
            rounds=args.rounds,
            time_limit_s=args.time_limit,
            target=args.target,
            temperature=args.temperature,
            search=args.search,
            learning_rate=args.learning_rate,
            anchor=args.anchor,
            candidates=args.candidates,
            label_every=args.label_every,
        )
        distribution = FleetDayDistribution()
        days = distribution.days(0, args.imitation_days)
        env = DispatchEnv(
            preset=None, scenarios=days, config=EnvConfig(max_drivers=distribution.max_drivers)
        )
        started = time.perf_counter()
        stats = imitate(
            agent,
            FeatureBuilder(config.candidates_per_booking),
            env,
            days,
            settings,
            args.seed,
            None
            if args.search == "lookahead"
            else HindsightPlans(args.time_limit, args.plans, args.search),
        )
        elapsed = time.perf_counter() - started
        for item in stats:
            print(item)
        print(f"imitation: {elapsed:.0f} s")
        report["imitation"] = {"settings": vars(args), "rounds": [vars(s) for s in stats]}
        name = f"imitation only ({args.target}, {args.imitation_days} days, {args.rounds} rounds)"
        policies[name] = PairwisePolicy(agent.target_network, name=name)
    for item in args.variant:
        name, path = item.split("=", 1)
        policies[name] = PairwisePolicy(load_pairwise_model(path), name=name)

    days = held_out_days(args.days)
    report["days"] = [d.name for d in days]
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    results = {
        name: evaluate_policy(policy, days, env_config, label=name)
        for name, policy in policies.items()
    }
    print(f"{len(days)} held-out days (fleets of 7, 13, 24), mean ± half-width of the 95% CI")
    report["variants"] = compare_variants(results, [START])
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
