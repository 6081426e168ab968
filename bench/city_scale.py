"""One city-scale day end to end with a pairwise model: wall time and decision latency.

    .venv/bin/python bench/city_scale.py --model runs/pairwise/best_model.safetensors \
        [--drivers 300] [--bookings 6000] [--visible-slots 20] [--json OUT]

A geneva-style day with ``--drivers`` drivers and ``--bookings`` bookings, played by the same
model that was trained on fleets of 5 to 30 (and by the insertion heuristic, for reference).
The decision latency is the time of ``policy.act(env)`` alone: features from the env's state
(the simulator has already computed the insertion table, as it does for every policy) and the
network's forward pass, on one core (``torch.set_num_threads(1)``; the forward pass is
NumPy). The wall time is the whole day: simulator, env and policy. Latency is reported twice: wall
clock, and the thread's CPU time (what the decision costs, without the time the OS gave other
processes on a shared machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

import numpy as np
import torch

from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, GenevaConfig, make_geneva


def play(policy: Any, env: DispatchEnv, scenario: Any) -> dict[str, Any]:
    started = time.perf_counter()
    env.reset(options={"scenario": scenario})
    cpu_started = time.process_time()
    wall_latencies, cpu_latencies = [], []
    terminated = False
    while not terminated:
        wall_before, cpu_before = time.perf_counter(), time.thread_time()
        action = policy.act(env)
        cpu_latencies.append(time.thread_time() - cpu_before)
        wall_latencies.append(time.perf_counter() - wall_before)
        _, _, terminated, _, _ = env.step(action)
    metrics = env.metrics()

    def summary(latencies: list[float]) -> dict[str, float]:
        values = np.asarray(latencies) * 1e3
        return {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
            "mean": float(values.mean()),
        }

    return {
        "wall_time_s": time.perf_counter() - started,
        "cpu_time_s": time.process_time() - cpu_started,
        "decisions": len(wall_latencies),
        "latency_ms": summary(wall_latencies),
        "cpu_latency_ms": summary(cpu_latencies),
        "metrics": metrics.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default="runs/pairwise/best_model.safetensors")
    parser.add_argument("--drivers", type=int, default=300)
    parser.add_argument("--bookings", type=int, default=6000)
    parser.add_argument("--visible-slots", type=int, default=20)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEEDS[-1])
    parser.add_argument("--json", default="runs/pairwise/city_scale.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    config = GenevaConfig(
        n_drivers=args.drivers, min_bookings=args.bookings, max_bookings=args.bookings
    )
    scenario = make_geneva(args.seed, config)
    env = DispatchEnv(
        preset=None,
        scenario=scenario,
        config=EnvConfig(max_drivers=args.drivers, visible_slots=args.visible_slots),
    )
    model = load_pairwise_model(args.model)
    policy = PairwisePolicy(model)
    warm = make_geneva(args.seed, GenevaConfig(n_drivers=5, min_bookings=60, max_bookings=60))
    play(policy, DispatchEnv(preset=None, scenario=warm, config=EnvConfig(max_drivers=5)), warm)

    results = {
        "drivers": args.drivers,
        "bookings": len(scenario.bookings),
        "visible_slots": args.visible_slots,
        "model": str(args.model),
        "model_version": model.metadata.version,
        "pairwise": play(policy, env, scenario),
        "insertion": play(make_baseline("insertion"), env, scenario),
    }
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name in ("pairwise", "insertion"):
        item = results[name]
        wall, cpu = item["latency_ms"], item["cpu_latency_ms"]
        metrics = item["metrics"]
        print(
            f"{name:9s} {args.drivers} drivers, {results['bookings']} bookings: "
            f"{item['wall_time_s']:.1f} s wall ({item['cpu_time_s']:.1f} s CPU), "
            f"{item['decisions']} decisions; decision latency wall p50 {wall['p50']:.2f} ms "
            f"p99 {wall['p99']:.2f} ms, CPU p50 {cpu['p50']:.2f} ms p99 {cpu['p99']:.2f} ms; "
            f"reward {metrics['reward']:.0f}, completion {metrics['completion_rate']:.3f}, "
            f"late {metrics['late_pickup_rate']:.3f}"
        )
    if args.json:
        atomic_write_json(args.json, results)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
