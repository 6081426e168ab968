"""``rldispatch serve`` under abuse: maximal requests against the request budget, ``/healthz``
while they run, the log's growth, and memory.

One real server process (a pairwise model, untrained: a trained one's shapes and costs), RL
switched on, ``--request-budget-ms`` as given. Measured, in this order:

1. **Budget.** The largest valid round and suggestion (10,000 drivers, 1,000 open bookings)
   with ``--lookahead 3``: each request's wall time from the client against the budget (the
   margin is what it takes beyond the budget: the body's transfer and validation, the decision
   in progress, the answer).
2. **Responsiveness.** ``/healthz`` every 20 ms while 4 such rounds are posted at once: p50,
   p99 and the worst, and how many of the 4 were answered 503 (the large lane takes 2 at a
   time and lets 4 wait; a busy server answers 503 with Retry-After at once).
3. **Log growth.** The SQLite file (with its WAL) before and after one maximal round, the
   decisions written and lost (the file's size once its WAL is checkpointed); and a 12-hour
   day of one-minute rounds that place nothing (30 drivers whose shifts have ended, 100 open
   bookings), first with only the clock moving, then with the fleet's times changing every
   minute (every state differs).
4. **Memory.** The server's RSS idle, at its peak and at rest (5 s after) around 12 maximal
   rounds posted at once (each retried on 503 after its Retry-After), with and without the
   lookahead (a server each).

    nice -n 10 .venv/bin/python bench/serve_abuse.py --json bench/serve_abuse.json

The machine's load average is kept beside the figures: on 2 shared cores they measure the
machine as much as the service.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from report_file import machine_figures
from serve_process import READ_TOKEN, ServeProcess

from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.files import atomic_write_json
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.http.schemas import MAX_DRIVERS_PER_REQUEST, MAX_OPEN_BOOKINGS

HEADERS = {"Authorization": f"Bearer {READ_TOKEN}"}


def fleet_body(n_drivers: int, n_open: int, seed: int = 0, shift_ends_in_min: float = 300.0):
    """A Geneva fleet and open bookings (times from now), as a round's body."""
    day = make_preset("geneva", seed)
    rng = np.random.default_rng(seed)

    def booking(index: int) -> dict[str, Any]:
        source = day.bookings[index % len(day.bookings)]
        opens = float(rng.uniform(0.0, 40.0))
        return {
            "id": f"b{index}",
            "pickup": {"lat": source.pickup[0], "lon": source.pickup[1]},
            "dropoff": {"lat": source.dropoff[0], "lon": source.dropoff[1]},
            "requested_in_min": opens + 10.0,
            "window_opens_in_min": opens,
            "window_closes_in_min": opens + 35.0,
            "service_min": 3.0,
            "load": 1,
        }

    drivers = []
    for index in range(n_drivers):
        where = day.bookings[(7 * index + 3) % len(day.bookings)].dropoff
        drivers.append(
            {
                "id": f"d{index}",
                "position": {"lat": where[0], "lon": where[1]},
                "free_in_min": float(rng.uniform(0.0, 20.0)),
                "shift_ends_in_min": shift_ends_in_min,
                "capacity": 1,
            }
        )
    return {
        "drivers": drivers,
        "open_bookings": [booking(i) for i in range(n_open)],
        "minute_of_day": 600.0,
    }


def suggest_of(round_body: dict[str, Any]) -> dict[str, Any]:
    first, *others = round_body["open_bookings"]
    first = {**first, "requested_in_min": 5.0, "window_opens_in_min": 0.0}
    first["window_closes_in_min"] = 12.0
    return {**round_body, "booking": first, "open_bookings": others}


class Server(ServeProcess):
    """``rldispatch serve`` of ``model`` in a process of its own, RL on for every booking."""

    def __init__(self, model: Path, data_dir: Path, port: int, *options: str) -> None:
        super().__init__(data_dir, "--model", str(model), *options, port=port, rl_on=True)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        return float("nan")

    def log_bytes(self) -> int:
        """The SQLite file's size once its WAL is checkpointed into it."""
        path = self.data_dir / "service.sqlite3"
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    def wait_written(self) -> dict[str, Any]:
        while True:
            status = httpx.get(f"{self.url}/rl/status", headers=HEADERS, timeout=60).json()
            if status["database"]["pending"] == 0:
                return status["database"]
            time.sleep(0.2)


def post(url: str, path: str, body: dict[str, Any], retry: bool = False) -> tuple[int, float, Any]:
    """(status, seconds, answer) of one request; with ``retry`` a 503 is retried after its
    Retry-After (the seconds then count from the first try)."""
    started = time.monotonic()
    while True:
        response = httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=600)
        if response.status_code != 503 or not retry:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    answer = response.json() if response.status_code == 200 else response.text[:200]
    return response.status_code, time.monotonic() - started, answer


def percentile_ms(samples_s: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples_s) * 1e3, q)) if samples_s else float("nan")


def budget_figures(server: Server, round_body: dict, budget_ms: float, repeats: int) -> dict:
    figures: dict[str, Any] = {}
    for path, body in (("/rl/round", round_body), ("/rl/suggest", suggest_of(round_body))):
        runs = []
        for _ in range(repeats):
            code, seconds, answer = post(server.url, path, body)
            runs.append(
                {
                    "status": code,
                    "wall_s": round(seconds, 3),
                    "over_budget_s": round(seconds - budget_ms / 1e3, 3),
                    "ended": answer.get("ended") if isinstance(answer, dict) else None,
                    "source": answer.get("source") if isinstance(answer, dict) else None,
                    "reason": answer.get("reason") if isinstance(answer, dict) else None,
                    "assignments": len(answer.get("assignments", []))
                    if isinstance(answer, dict)
                    else None,
                }
            )
        figures[path] = runs
    return figures


def healthz_figures(server: Server, round_body: dict, concurrent: int) -> dict:
    results: list[tuple[int, float, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(post(server.url, "/rl/round", round_body)))
        for _ in range(concurrent)
    ]
    for thread in threads:
        thread.start()
    samples = []
    with httpx.Client(timeout=30) as client:
        while any(thread.is_alive() for thread in threads):
            started = time.monotonic()
            client.get(f"{server.url}/healthz")
            samples.append(time.monotonic() - started)
            time.sleep(0.02)
    for thread in threads:
        thread.join()
    return {
        "rounds_at_once": concurrent,
        "healthz_samples": len(samples),
        "healthz_p50_ms": round(percentile_ms(samples, 50), 1),
        "healthz_p99_ms": round(percentile_ms(samples, 99), 1),
        "healthz_max_ms": round(max(samples) * 1e3, 1) if samples else None,
        "answers": sorted(code for code, _, _ in results),
        "round_wall_s": sorted(round(seconds, 2) for _, seconds, _ in results),
    }


def log_figures(server: Server, round_body: dict, minutes: int) -> dict:
    server.wait_written()
    before = server.log_bytes()
    code, seconds, answer = post(server.url, "/rl/round", round_body)
    database = server.wait_written()
    after_round = server.log_bytes()
    # A day of one-minute rounds that place nothing: shifts over, the clock moving.
    idle = fleet_body(30, 100, seed=1, shift_ends_in_min=0.5)
    placed = 0
    for minute in range(minutes):
        body = {**idle, "minute_of_day": 360.0 + minute}
        _, _, nothing = post(server.url, "/rl/round", body)
        placed += len(nothing.get("assignments", [])) if isinstance(nothing, dict) else 0
    after_unchanged = server.log_bytes()
    # The same day with the fleet's times moving each minute: every state differs.
    for minute in range(minutes):
        drivers = [{**d, "free_in_min": minute * 0.01} for d in idle["drivers"]]
        body = {**idle, "drivers": drivers, "minute_of_day": 360.0 + minute}
        post(server.url, "/rl/round", body)
    final = server.wait_written()
    return {
        "maximal_round": {
            "status": code,
            "wall_s": round(seconds, 2),
            "assignments": len(answer.get("assignments", [])) if isinstance(answer, dict) else 0,
            "log_growth_mb": round((after_round - before) / 2**20, 3),
            "written": database["written"],
            "lost": database["lost"],
        },
        "day_of_empty_rounds": {
            "rounds": minutes,
            "assignments": placed,
            "log_growth_kb": round((after_unchanged - after_round) / 1024, 1),
        },
        "day_of_empty_rounds_fleet_moving": {
            "rounds": minutes,
            "log_growth_kb": round((server.log_bytes() - after_unchanged) / 1024, 1),
            "lost": final["lost"],
        },
    }


def memory_figures(server: Server, round_body: dict, concurrent: int) -> dict:
    httpx.post(f"{server.url}/rl/round", json=fleet_body(5, 5), headers=HEADERS, timeout=60)
    idle = server.rss_mb()
    peak = idle
    results: list[tuple[int, float, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(post(server.url, "/rl/round", round_body, retry=True))
        )
        for _ in range(concurrent)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, server.rss_mb())
        time.sleep(0.05)
    wall_s = time.monotonic() - started
    server.wait_written()
    time.sleep(5.0)
    rest = server.rss_mb()
    return {
        "rounds": concurrent,
        "answers": sorted(code for code, _, _ in results),
        "wall_s": round(wall_s, 1),
        "rss_idle_mb": round(idle),
        "rss_peak_mb": round(peak),
        "rss_at_rest_mb": round(rest),
        "at_rest_over_idle_mb": round(rest - idle),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--request-budget-ms", type=float, default=10_000.0)
    parser.add_argument("--repeats", type=int, default=2, help="maximal requests of each kind")
    parser.add_argument("--minutes", type=int, default=720, help="rounds of the empty day")
    parser.add_argument("--concurrent", type=int, default=12, help="rounds of the memory run")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--log-only", action="store_true", help="the log's figures alone")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": machine_figures(),
        "request_budget_ms": args.request_budget_ms,
    }
    maximal = fleet_body(MAX_DRIVERS_PER_REQUEST, MAX_OPEN_BOOKINGS)
    budget = ("--request-budget-ms", str(args.request_budget_ms))
    with tempfile.TemporaryDirectory() as folder:
        model = save_untrained_model(Path(folder) / "pairwise.safetensors", 0)
        if args.log_only:
            server = Server(model, Path(folder) / "b", args.port + 1, *budget)
            try:
                report["log"] = log_figures(server, maximal, args.minutes)
            finally:
                server.stop()
            print(report["log"])
            if args.json:
                atomic_write_json(args.json, report)
            return 0
        server = Server(model, Path(folder) / "a", args.port, "--lookahead", "3", *budget)
        try:
            report["budget"] = budget_figures(server, maximal, args.request_budget_ms, args.repeats)
            print(report["budget"], flush=True)
            report["healthz"] = healthz_figures(server, maximal, 4)
            print(report["healthz"], flush=True)
            report["memory_lookahead"] = memory_figures(server, maximal, args.concurrent)
            print(report["memory_lookahead"], flush=True)
        finally:
            report["shutdown_s"] = round(server.stop(), 2)
        server = Server(model, Path(folder) / "b", args.port + 1, *budget)
        try:
            report["memory"] = memory_figures(server, maximal, args.concurrent)
            print(report["memory"], flush=True)
            report["log"] = log_figures(server, maximal, args.minutes)
            print(report["log"], flush=True)
        finally:
            server.stop()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    walls = [run["over_budget_s"] for runs in report["budget"].values() for run in runs]
    report["budget_margin_s_max"] = max(walls)
    report["summary"] = {
        "median_over_budget_s": statistics.median(walls),
        "healthz_p99_ms": report["healthz"]["healthz_p99_ms"],
    }
    print(report["summary"])
    if args.json:
        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
