"""Suggestion latency of the service with a pairwise model, by fleet size, in process.

    .venv/bin/python bench/pairwise_serve_latency.py --model runs/pairwise/best_model.safetensors \
        [--fleets 10 24 100 300] [--repeats 400] [--json runs/pairwise/serve_latency.json]

For each fleet size, ``RLDispatchManager.suggest`` on requests built from Geneva days (20 other
open bookings, drivers where bookings end), RL enabled for every booking, against the
reference measured in the same run on the same requests: a manager without a model, whose
every answer is the insertion heuristic's. Wall-clock and thread-CPU p50/p99 on one thread.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import torch
from serve_latency import booking_body, timed

from rldispatch.files import atomic_write_json
from rldispatch.service.ab import ToggleState
from rldispatch.service.manager import RLDispatchManager
from rldispatch.service.schemas import SuggestRequest
from rldispatch.training.fleet_days import geneva_day


def request_bodies(count: int, n_drivers: int, n_open: int = 20) -> list[dict[str, Any]]:
    """Suggest requests from geneva-style days of ``n_drivers`` drivers (demand scaled with
    the fleet): the booking, ``n_open`` other open bookings, drivers where bookings end."""
    bodies = []
    for index in range(count):
        day = geneva_day(index % 20, max(n_drivers, 10))
        rng = np.random.default_rng(index)
        picks = rng.choice(len(day.bookings), size=n_open + 1 + n_drivers, replace=False)
        bookings = [
            booking_body(
                day.bookings[int(picks[j])],
                f"bench-{index}" if j == 0 else f"bench-{index}-o{j}",
                float(rng.uniform(0.0, 60.0)),
            )
            for j in range(n_open + 1)
        ]
        drivers = [
            {
                "id": f"d{k + 1}",
                "position": dict(zip(("lat", "lon"), day.bookings[int(p)].dropoff, strict=True)),
                "free_in_min": float(rng.choice([0.0, rng.uniform(0.0, 30.0)])),
                "shift_ends_in_min": 400.0,
                "rides_today": int(rng.integers(0, 8)),
            }
            for k, p in enumerate(picks[n_open + 1 :])
        ]
        bodies.append(
            {
                "booking": bookings[0],
                "drivers": drivers,
                "open_bookings": bookings[1:],
                "minute_of_day": 600.0,
            }
        )
    return bodies


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
        bodies = request_bodies(args.requests, n_drivers=n_drivers)
        requests = [SuggestRequest.model_validate(b).to_live(600.0) for b in bodies]
        for manager in (model, fallback):
            for request in requests:  # warm the thread's env of this size and its caches
                manager.suggest(request)
        rl = timed(model.suggest, requests, args.repeats)
        reference = timed(fallback.suggest, requests, args.repeats)
        sources = model.statistics().by_source
        report["fleets"][str(n_drivers)] = {"pairwise": rl, "fallback_only": reference}
        print(
            f"{n_drivers:4d} drivers: pairwise p50 {rl['p50_us'] / 1e3:.2f} ms p99 "
            f"{rl['p99_us'] / 1e3:.2f} ms (CPU p99 {rl['cpu_p99_us'] / 1e3:.2f} ms) | "
            f"insertion alone p50 {reference['p50_us'] / 1e3:.2f} ms p99 "
            f"{reference['p99_us'] / 1e3:.2f} ms | p99 ratio "
            f"{rl['p99_us'] / reference['p99_us']:.1f}x"
        )
    report["sources"] = model.statistics().by_source
    report["fallbacks"] = model.statistics().fallbacks
    report["load_average"] = os.getloadavg()
    print(
        f"answers by source: {sources}, fallbacks by reason: {report['fallbacks']}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
