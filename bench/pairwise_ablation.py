"""Ablations of the pairwise model on the held-out days: what made the difference.

    .venv/bin/python bench/pairwise_ablation.py --model runs/pairwise/best_model.safetensors \
        --variant "DQN from scratch=runs/pairwise-scratch/best_model.safetensors" ... \
        [--days 50] [--json runs/pairwise/ablation.json]

Besides the ``--variant`` model files it builds two reference networks that need no training:
``known rewards only`` (the final model's architecture before any learning: each pair scored by
its known shaped reward, the assignment bonus and cancellation it avoids, minus the km it adds
and the late pickups it causes, its own and those it pushes back) and ``... without knock-on``
(the same, blind to the pickups an insertion pushes late: those features zeroed). Every variant
plays the same held-out days; each line gives its mean reward, completion and late rate, and
the paired reward difference to the main model with its 95% CI.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from variants import paired, variant_line, variant_summary

from rldispatch.agents.pairwise.features import PAIR_FEATURES, FeatureBuilder, PairState
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import HELD_OUT_FLEET_SIZES, held_out_days
from rldispatch.training.evaluation import evaluate_policy

KNOCK_ON = [PAIR_FEATURES.index(name) for name in PAIR_FEATURES if name.startswith("knock_on")]


class NoKnockOnFeatures(FeatureBuilder):
    """The features with the knock-on lateness and delays zeroed."""

    def build(self, env: DispatchEnv) -> PairState:
        state = super().build(env)
        state.pairs[:, KNOCK_ON] = 0.0
        return state


def known_reward_network() -> PairQNetwork:
    reward = TrainingReward(RewardConfig(), shaping_weight=1.0, scale=0.2)
    return PairQNetwork(known_reward=reward.known_reward())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default="runs/pairwise/best_model.safetensors")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--json", default="runs/pairwise/ablation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    policies: dict[str, Any] = {"final model": PairwisePolicy(load_pairwise_model(args.model))}
    for item in args.variant:
        name, path = item.split("=", 1)
        policies[name] = PairwisePolicy(load_pairwise_model(path), name=name)
    policies["known rewards only (untrained)"] = PairwisePolicy(known_reward_network())
    without = PairwisePolicy(known_reward_network())
    without.features = NoKnockOnFeatures(without.features.candidates_per_booking)
    policies["known rewards only, without knock-on"] = without
    policies["best heuristic: insertion"] = make_baseline("insertion")
    policies["best heuristic: matching"] = make_baseline("matching")

    days = held_out_days(args.days)
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    results = {
        name: evaluate_policy(policy, days, env_config, progress=True, label=name)
        for name, policy in policies.items()
    }
    main_rewards = [m.reward for m in results["final model"]]
    report: dict[str, Any] = {"days": [d.name for d in days], "variants": {}}
    width = max(len(name) for name in results)
    print(f"{len(days)} held-out days (fleets of 7, 13, 24), mean ± half-width of the 95% CI")
    for name, metrics in results.items():
        summary = variant_summary(metrics)
        line = variant_line(name, width, summary)
        if name != "final model":
            rewards = [m.reward for m in metrics]
            summary["final_minus_this"], text = paired("final - this", main_rewards, rewards)
            line += text
        report["variants"][name] = summary
        print(line)
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
