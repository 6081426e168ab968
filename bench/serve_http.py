"""HTTP throughput of ``rldispatch serve`` with 1 and 2 worker processes, on loopback.

For each worker count: ``rldispatch serve --workers N`` in its own process tree (ONNX Runtime,
the prototype's shapes unless ``--model``), RL switched on for every booking, then a
keep-alive HTTP/1.1 load generator (asyncio, ``--connections`` connections, in this process)
posts realistic suggestions (10 Geneva drivers, 20 open bookings) for ``--duration`` seconds
after a 5 s warm-up (``--plans``: states of played days instead, every driver with its plan,
``--drivers`` drivers, as in ``bench/pairwise_serve_latency.py``). Reports requests per
second, p50/p99 latency, errors (any answer but 200, any connection failure), server CPU per
request (all worker processes), and the throughput of N workers against one measured in the
same run. Usage::

    nice -n 10 .venv/bin/python bench/serve_http.py --duration 60 --json bench/serve_http.json

On a machine with fewer free cores than workers plus the load generator, the ratio measures
the machine, not the service: the report keeps the load average and core count beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from report_file import machine_figures, write_report
from serve_latency import http_text, over_http, write_prototype_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", type=Path, help="model file (default: prototype shapes)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=8, help="HTTP connections")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--runtime", default="onnx", help="server's model runtime")
    parser.add_argument("--plans", action="store_true", help="requests with drivers' plans")
    parser.add_argument("--drivers", type=int, default=10, help="drivers per request (--plans)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    bodies = plan_request_bodies(args.drivers) if args.plans else None

    report: dict[str, Any] = {
        "machine": machine_figures(),
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or write_prototype_model(Path(folder) / "prototype.safetensors")
        for workers in args.workers:
            result = asyncio.run(
                over_http(model, args.runtime, args.connections, args.duration, workers, bodies)
            )
            result["plans"] = args.plans
            result["drivers"] = args.drivers if args.plans else 10
            result["load_average_after"] = os.getloadavg()
            report["runs"][str(workers)] = result
            print(http_text(result), flush=True)
    base = report["runs"].get(str(args.workers[0]))
    for result in report["runs"].values():
        result["throughput_vs_first"] = result["requests_per_s"] / base["requests_per_s"]
    if len(args.workers) > 1:
        last = report["runs"][str(args.workers[-1])]
        print(
            f"{args.workers[-1]} workers / {args.workers[0]}: "
            f"{last['throughput_vs_first']:.2f}x the throughput"
        )
    report["machine"]["load_average_at_end"] = os.getloadavg()
    write_report(args.json, report)
    return 0


def plan_request_bodies(n_drivers: int, count: int = 40) -> list[dict[str, Any]]:
    """Suggest requests of states of played days: every driver with its plan."""
    from pairwise_serve_latency import state_requests

    from rldispatch.service.decisions.manager import RLDispatchManager

    _, _, bodies = state_requests(n_drivers, count, RLDispatchManager(None).day)
    return bodies


if __name__ == "__main__":
    sys.exit(main())
