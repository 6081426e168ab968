"""Latency of the service's fallback, in process: ``reopt`` (one re-plan with OR-Tools per
answer) against ``insertion``, on the states of held-out geneva days.

The states are those of held-out geneva days played by cheapest insertion, every
``--every`` decisions: the fleet with its plans and the open bookings, as ``POST /rl/round``
receives them (``rldispatch.service.decisions.replay.state_body``). Each state is asked as a round
(``RLDispatchManager.dispatch_round``) and, for its most pressing open booking, as a
suggestion (``RLDispatchManager.suggest``), RL off so the fallback answers. ``reopt`` runs
without a time cap (the figures are a re-plan's own time); ``capped_rounds`` counts the
rounds slower than the service's default cap. Usage::

    .venv/bin/python bench/reopt_fallback_latency.py --days 3 --json bench/reopt_fallback.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


def day_states(days: int, every: int) -> list[Any]:
    """The states of ``days`` held-out geneva days every ``every`` insertion decisions."""
    from rldispatch.env import DispatchEnv, EnvConfig
    from rldispatch.policies.baselines import make_baseline
    from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
    from rldispatch.service.decisions.replay import state_body
    from rldispatch.service.decisions.snapshot import LiveDay
    from rldispatch.service.http.fleet_schemas import RoundRequest

    day = LiveDay.from_preset("geneva")
    states = []
    for seed in HELD_OUT_SEEDS[:days]:
        scenario = make_preset("geneva", seed)
        config = replace(EnvConfig(), max_drivers=len(scenario.drivers))
        env = DispatchEnv(preset=None, scenario=scenario, config=config)
        env.reset(options={"scenario": scenario})
        policy, terminated, decisions = make_baseline("insertion"), False, 0
        while not terminated:
            if decisions % every == 0:
                body = state_body(env.sim, day.start_min)
                if body["open_bookings"]:
                    states.append(RoundRequest.model_validate(body).to_state(0.0, day))
            _, _, terminated, _, _ = env.step(policy.act(env))
            decisions += 1
    return states


def figures_ms(wall_s: list[float], cpu_s: list[float]) -> dict[str, float]:
    """Wall-clock mean, p50, p99 and max, and the CPU time's mean and p99 (immune to other
    processes on a busy machine)."""
    wall, cpu = np.asarray(wall_s) * 1e3, np.asarray(cpu_s) * 1e3
    return {
        "mean_ms": float(wall.mean()),
        "p50_ms": float(np.percentile(wall, 50)),
        "p99_ms": float(np.percentile(wall, 99)),
        "max_ms": float(wall.max()),
        "cpu_mean_ms": float(cpu.mean()),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        "samples": int(wall.size),
    }


def timed(function: Any, arguments: list[Any]) -> tuple[list[float], list[float]]:
    """Wall-clock and thread CPU seconds of ``function`` on each argument."""
    wall, cpu = [], []
    for argument in arguments:
        cpu_started, started = time.thread_time(), time.perf_counter()
        function(argument)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - cpu_started)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--days", type=int, default=3, help="held-out geneva days (3)")
    parser.add_argument("--every", type=int, default=10, help="decisions between states (10)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from rldispatch.files import atomic_write_json
    from rldispatch.service.config import DEFAULT_FALLBACK_TIME_LIMIT_S
    from rldispatch.service.decisions.manager import LiveRequest, RLDispatchManager
    from rldispatch.training.threads import single_threaded_numerics

    single_threaded_numerics()
    states = day_states(args.days, args.every)
    suggestions = []
    for state in states:
        booking = min(state.open_bookings, key=lambda b: b.window[1])
        others = tuple(b for b in state.open_bookings if b is not booking)
        suggestions.append(LiveRequest(booking, replace(state, open_bookings=others)))
    results: dict[str, Any] = {}
    for name in ("insertion", "reopt"):
        manager = RLDispatchManager(None, fallback_policy=name, fallback_time_limit_s=None)
        manager.warm_up()
        rounds = timed(manager.dispatch_round, states)
        suggest = timed(manager.suggest, suggestions)
        results[name] = {"round": figures_ms(*rounds), "suggest": figures_ms(*suggest)}
        if name == "reopt":
            slow = sum(s > DEFAULT_FALLBACK_TIME_LIMIT_S for s in rounds[0] + suggest[0])
            results[name]["over_default_cap"] = slow
        for question in ("round", "suggest"):
            figures = results[name][question]
            print(
                f"{name:9s} {question:7s} mean {figures['mean_ms']:.1f} ms, p99 "
                f"{figures['p99_ms']:.1f} ms (CPU mean {figures['cpu_mean_ms']:.1f} ms, p99 "
                f"{figures['cpu_p99_ms']:.1f} ms) on {len(states)} states"
            )
    report = {
        "states": len(states),
        "days": args.days,
        "every": args.every,
        "default_cap_s": DEFAULT_FALLBACK_TIME_LIMIT_S,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average": os.getloadavg(),
        "fallbacks": results,
    }
    if args.json:
        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
