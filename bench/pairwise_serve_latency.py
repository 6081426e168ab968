"""Latency of the service with a pairwise model, by fleet size, in process, on requests with
plans.

    .venv/bin/python bench/pairwise_serve_latency.py [--model M] [--fleets 10 50 300] \
        [--repeats 400] [--lookahead N [--lookahead-budget-ms MS]] \
        [--json runs/pairwise/serve_latency.json]

Requests are real states: for each fleet size, Geneva-style days whose demand scales with
the fleet (``geneva_day``) are played with cheapest insertion up to a decision between 09:00
and 13:00; the simulator's state there (every driver with its plan, the open bookings, at most
the 1,000 most pressing) is a request
(:func:`rldispatch.service.decisions.replay.mid_day_states`), and ``suggest`` asks about its
most pressing open booking. Timed on one thread: ``suggest`` and
``dispatch_round`` (the parsed request to the answer) with the model's forward pass on NumPy
and on ONNX Runtime, and against the reference on the same requests in the same run, a
manager without a model (every answer the insertion heuristic's). Wall-clock and thread-CPU
p50/p99. Reading a request is timed apart (``parse``: its JSON bytes validated and converted
to a live state, as the service reads them; a body above ``LARGE_BODY_BYTES`` with the
cyclic collector paused, as the service's large lane reads it), and with the answer
(``suggest_from_bytes``, for NumPy and the heuristic): the whole of a request's time in
process. ``--lookahead N`` adds
a manager whose rounds look ahead (``serve --lookahead``).

Without ``--model`` an untrained pairwise network is used (the known reward of an action on
zeroed output layers; its latency is a trained one's: same shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from serve_latency import timed

from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.service.config import DEFAULT_LOOKAHEAD_BUDGET_MS, Lookahead
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.decisions.replay import mid_day_states
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.decisions.workload import LARGE_BODY_BYTES, run_work, settle_heap
from rldispatch.service.http.fleet_schemas import RoundRequest, SuggestRequest
from rldispatch.service.http.raw_body import parse_body
from rldispatch.service.http.schemas import MAX_OPEN_BOOKINGS


def state_requests(n_drivers: int, count: int, day: LiveDay) -> tuple[list, list, list]:
    """``count`` suggest and round requests of fleets of ``n_drivers`` (parsed), and the
    suggest requests' JSON bodies."""
    suggests, rounds, bodies = [], [], []
    # A request holds at most 1,000 open bookings: the most pressing (a 300-driver day has
    # more open, advance bookings included).
    states = mid_day_states(
        lambda index: geneva_day(index, max(n_drivers, 10)),
        EnvConfig(max_drivers=n_drivers),
        day.start_min,
        np.random.default_rng(n_drivers),
        MAX_OPEN_BOOKINGS,
    )
    for env, body in islice(states, count):
        rounds.append(RoundRequest.model_validate(body).to_state(0.0, day))
        booking = env.sim.scenario.bookings[int(env.visible[0])].id
        open_bookings = body["open_bookings"]
        asked = next(b for b in open_bookings if b["id"] == booking)
        others = [b for b in open_bookings if b["id"] != booking]
        suggest = {**body, "booking": asked, "open_bookings": others}
        suggests.append(SuggestRequest.model_validate(suggest).to_live(0.0, day))
        bodies.append(suggest)
    return suggests, rounds, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--fleets", type=int, nargs="+", default=[10, 50, 300])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--lookahead", type=int, default=0)
    parser.add_argument("--lookahead-budget-ms", type=float, default=DEFAULT_LOOKAHEAD_BUDGET_MS)
    parser.add_argument("--json", default="runs/pairwise/serve_latency.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rl_on = ToggleState(enabled=True, ab_ratio=1.0)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or save_untrained_model(Path(folder) / "pairwise.safetensors")
        managers = {
            "numpy": RLDispatchManager(model, runtime="numpy", state=rl_on),
            "onnx": RLDispatchManager(model, runtime="onnx", state=rl_on),
            "heuristic": RLDispatchManager(None, state=rl_on),
        }
        if args.lookahead:
            budget = args.lookahead_budget_ms / 1e3 if args.lookahead_budget_ms else None
            lookahead = Lookahead(args.lookahead, budget)
            managers["lookahead"] = RLDispatchManager(model, state=rl_on, lookahead=lookahead)
    for name, manager in managers.items():
        if name != "heuristic" and manager.model is None:
            raise SystemExit(f"model not loaded: {manager.model_error}")
    report: dict[str, Any] = {"model": str(args.model or "untrained"), "fleets": {}}
    day = managers["numpy"].day
    for n_drivers in args.fleets:
        suggests, rounds, bodies = state_requests(n_drivers, args.requests, day)
        figures: dict[str, Any] = {
            "open_bookings_mean": float(np.mean([len(r.open_bookings) for r in rounds])),
            "plan_stops_mean": float(
                np.mean([sum(2 * len(d.plan) for d in r.drivers) for r in rounds])
            ),
        }
        for manager in managers.values():
            for request in suggests:  # compiled kernels, caches
                manager.suggest(request)
        settle_heap()  # as the service does once it has warmed up
        for name, manager in managers.items():
            figures[name] = {
                "suggest": timed(manager.suggest, suggests, args.repeats),
                "round": timed(manager.dispatch_round, rounds, args.repeats),
            }
        # Reading a request from its bytes (validation and conversion to a live state), as
        # the service does, apart from answering; then both: the request answered from its
        # bytes.
        # A body above LARGE_BODY_BYTES is read and answered with the cyclic collector paused,
        # as the service's large lane runs it (run_work).
        raws = [json.dumps(body).encode() for body in bodies]
        figures["body_kb_mean"] = float(np.mean([len(raw) for raw in raws]) / 1024)
        figures["parse"] = timed(
            lambda raw: run_work(
                lambda: parse_body(SuggestRequest, raw).to_live(0.0, day),
                len(raw) > LARGE_BODY_BYTES,
            ),
            raws,
            max(args.repeats // 4, len(raws)),
        )
        for name in ("numpy", "heuristic"):
            manager = managers[name]
            figures[name]["suggest_from_bytes"] = timed(
                lambda raw, manager=manager: run_work(
                    lambda: manager.suggest(parse_body(SuggestRequest, raw).to_live(0.0, day)),
                    len(raw) > LARGE_BODY_BYTES,
                ),
                raws,
                max(args.repeats // 4, len(raws)),
            )
        report["fleets"][str(n_drivers)] = figures
        line = [
            f"{n_drivers:4d} drivers ({figures['open_bookings_mean']:.0f} open bookings, "
            f"{figures['plan_stops_mean']:.0f} plan stops):"
        ]
        for name in managers:
            for kind in ("suggest", "round"):
                f = figures[name][kind]
                line.append(
                    f"  {name:9s} {kind:7s} p50 {f['p50_us'] / 1e3:6.2f} ms  p99 "
                    f"{f['p99_us'] / 1e3:6.2f} ms  (CPU p50 {f['cpu_p50_us'] / 1e3:6.2f}, "
                    f"p99 {f['cpu_p99_us'] / 1e3:6.2f} ms)"
                )
        parse = figures["parse"]
        line.append(
            f"  parse ({figures['body_kb_mean']:.0f} kB of JSON to a live state) p50 "
            f"{parse['p50_us'] / 1e3:6.2f} ms  p99 "
            f"{parse['p99_us'] / 1e3:6.2f} ms  (CPU p50 {parse['cpu_p50_us'] / 1e3:6.2f}, "
            f"p99 {parse['cpu_p99_us'] / 1e3:6.2f} ms)"
        )
        for name in ("numpy", "heuristic"):
            f = figures[name]["suggest_from_bytes"]
            line.append(
                f"  {name:9s} suggest read from bytes and answered: CPU p50 "
                f"{f['cpu_p50_us'] / 1e3:6.2f} ms, p99 {f['cpu_p99_us'] / 1e3:6.2f} ms"
            )
        heuristic = figures["heuristic"]["suggest"]["cpu_p50_us"]
        for name in managers:
            if name != "heuristic":
                ratio = figures[name]["suggest"]["cpu_p50_us"] / heuristic
                line.append(f"  {name} suggest / heuristic suggest (CPU p50): {ratio:.2f}")
        print("\n".join(line), flush=True)
    report["sources"] = {name: m.statistics().by_source for name, m in managers.items()}
    if "lookahead" in managers:
        report["lookahead"] = managers["lookahead"].lookahead_status()
        print(f"lookahead: {report['lookahead']}")
    report["load_average"] = os.getloadavg()
    print(f"load average {report['load_average'][0]:.1f}")
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
