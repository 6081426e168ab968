"""The lookahead expert against the network it looks ahead with, on held-out days.

    .venv/bin/python bench/pairwise_lookahead.py [--model PATH] [--candidates 3] \
        [--days 21] [--jobs 2] [--reopt] [--json runs/pairwise/lookahead.json]

The network is ``--model`` or, without it, the untrained start (each pair scored by its known
shaped reward). :class:`rldispatch.agents.pairwise.lookahead.LookaheadPolicy` plays each
decision's ``--candidates`` best pairs on in copies of the day that know only the bookings
known then and takes the one that ends best. Both, and the matching heuristic, play the same
held-out days (fleets of 7, 13 and 24 drivers); ``--reopt`` adds re-optimisation. Each line
gives the mean reward, late-pickup rate, the paired reward difference to the network (and to
reopt) with its 95% CI and the decision time (wall clock, mean and 99th percentile); the JSON
report keeps each day's reward.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from variants import compare_variants

from rldispatch.agents.pairwise.agent import PairDQNAgent
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.lookahead import LookaheadPolicy
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.network import NumpyPairQ
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.report import decision_time_summary
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import HELD_OUT_FLEET_SIZES, held_out_days
from rldispatch.training.evaluation import evaluate_policies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default=None, help="a pairwise model file (default: start)")
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--reopt", action="store_true", help="also play reopt on the days")
    parser.add_argument("--json", default="runs/pairwise/lookahead.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.model:
        loaded = load_pairwise_model(args.model)
        network, per_booking = loaded.network, loaded.metadata.candidates_per_booking
    else:
        config = PairwiseConfig()
        known = TrainingReward(RewardConfig(), 1.0, config.reward_scale).known_reward()
        network = PairDQNAgent(config, seed=0, known_reward=known).target_network
        per_booking = config.candidates_per_booking
    policies: dict[str, Any] = {
        "network": PairwisePolicy(network, name="network", candidates_per_booking=per_booking),
        "lookahead": LookaheadPolicy(NumpyPairQ(network), args.candidates, per_booking),
        "matching": make_baseline("matching"),
    }
    if args.reopt:
        policies["reopt"] = make_baseline("reopt")
    days = held_out_days(args.days)
    env_config = EnvConfig(max_drivers=max(HELD_OUT_FLEET_SIZES))
    results = evaluate_policies(policies, days, env_config, progress=True, jobs=args.jobs)
    times = decision_time_summary(results)
    report: dict[str, Any] = {"settings": vars(args), "days": [d.name for d in days]}
    print(f"{len(days)} held-out days (fleets of 7, 13, 24); differences are paired, 95% CI")

    def decision_text(name: str) -> str:
        return f"  decision {times[name]['mean']:8.2f} ms mean {times[name]['p99']:8.2f} ms p99"

    summaries = compare_variants(results, ["network", "reopt"], decision_text)
    for name, summary in summaries.items():
        summary["decision_ms"] = times.get(name)
        summary["day_rewards"] = [day.reward for day in results[name]]
        report[name] = summary
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
