"""Suggestion latency of the service with a pairwise model, by fleet size, in process.

    .venv/bin/python bench/pairwise_serve_latency.py --model runs/pairwise/best_model.safetensors \
        [--fleets 10 24 100 300] [--repeats 400] [--json runs/pairwise/serve_latency.json]

For each fleet size, ``RLDispatchManager.suggest`` on requests built from Geneva days (20 other
open bookings, drivers where bookings end; geneva-style days whose demand scales with the
fleet), RL enabled for every booking, against the
reference measured in the same run on the same requests: a manager without a model, whose
every answer is the insertion heuristic's. Wall-clock and thread-CPU p50/p99 on one thread.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from serve_latency import request_bodies, timed

from rldispatch.files import atomic_write_json
from rldispatch.service.ab import ToggleState
from rldispatch.service.fleet_schemas import SuggestRequest
from rldispatch.service.manager import RLDispatchManager
from rldispatch.training.fleet_days import geneva_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="runs/pairwise/best_model.safetensors")
    parser.add_argument("--fleets", type=int, nargs="+", default=[10, 24, 100, 300])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--json", default="runs/pairwise/serve_latency.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = RLDispatchManager(args.model, state=ToggleState(enabled=True, ab_ratio=1.0))
    if model.model is None:
        raise SystemExit(f"model not loaded: {model.model_error}")
    fallback = RLDispatchManager(None)
    report: dict[str, Any] = {"model": args.model, "fleets": {}}
    for n_drivers in args.fleets:
        bodies = request_bodies(
            args.requests,
            n_drivers=n_drivers,
            make_day=lambda index, n=n_drivers: geneva_day(index % 20, max(n, 10)),
        )
        requests = [SuggestRequest.model_validate(b).to_live(600.0, model.day) for b in bodies]
        for manager in (model, fallback):
            for request in requests:  # warm the caches
                manager.suggest(request)
        rl = timed(model.suggest, requests, args.repeats)
        reference = timed(fallback.suggest, requests, args.repeats)
        report["fleets"][str(n_drivers)] = {"pairwise": rl, "fallback_only": reference}
        print(
            f"{n_drivers:4d} drivers: pairwise p50 {rl['p50_us'] / 1e3:.2f} ms p99 "
            f"{rl['p99_us'] / 1e3:.2f} ms (CPU p99 {rl['cpu_p99_us'] / 1e3:.2f} ms) | "
            f"insertion alone p50 {reference['p50_us'] / 1e3:.2f} ms p99 "
            f"{reference['p99_us'] / 1e3:.2f} ms | p99 ratio "
            f"{rl['p99_us'] / reference['p99_us']:.1f}x"
        )
    statistics = model.statistics()
    report["sources"] = statistics.by_source
    report["fallbacks"] = statistics.fallbacks
    report["load_average"] = os.getloadavg()
    print(
        f"answers by source: {statistics.by_source}, fallbacks by reason: "
        f"{statistics.fallbacks}; load average {report['load_average'][0]:.1f}"
    )
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
