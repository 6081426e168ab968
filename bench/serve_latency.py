"""Suggestion latency of the service: in process per runtime, and over HTTP under load.

In process: ``RLDispatchManager.suggest`` on realistic requests (10 Geneva drivers, 20 open
bookings), RL enabled for every booking, for each runtime (NumPy, PyTorch, ONNX Runtime),
plus the fallback alone and the bare batch-1 forward pass.

Over HTTP: ``rldispatch serve`` in its own process on a loopback port, driven for
``--duration`` seconds by a keep-alive HTTP/1.1 load generator (asyncio, ``--connections``
concurrent connections) in this process; latency p50/p99, requests per second, errors (any
answer but 200, any connection failure).

Without ``--model`` a model with the prototype's shapes (122 -> 512 -> 256 -> 128 -> 201,
random weights, waiting scored low so every suggestion takes the RL path) is written to a
temporary folder. Usage::

    .venv/bin/python bench/serve_latency.py --duration 60 --json bench/serve_latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from report_file import machine_figures, write_report
from serve_process import READ_TOKEN, ServeProcess


def write_prototype_model(
    path: Path, hidden: tuple[int, ...] = (512, 256, 128), wait_bias: float | None = -100.0
) -> Path:
    """A flat model of the prototype's observation and actions with random weights (seed 0);
    ``wait_bias`` set scores waiting that low, so every suggestion takes the RL path."""
    import torch

    from rldispatch.agents.dqn.config import DQNConfig
    from rldispatch.agents.dqn.model_file import ModelMetadata, save_model
    from rldispatch.agents.dqn.network import QNetwork
    from rldispatch.env import EnvConfig

    config = EnvConfig()
    torch.manual_seed(0)
    network = QNetwork(config.observation_size, config.n_actions, hidden)
    if wait_bias is not None:
        with torch.no_grad():
            network.head.bias[0] = wait_bias
    metadata = ModelMetadata(
        observation_size=config.observation_size,
        n_actions=config.n_actions,
        env_config=asdict(config),
        preset="geneva",
        hyperparameters=asdict(DQNConfig(hidden_sizes=hidden)),
    )
    return save_model(path, network, metadata)


def _booking_body(source: Any, identifier: str, opens_in_min: float) -> dict[str, Any]:
    return {
        "id": identifier,
        "pickup": {"lat": source.pickup[0], "lon": source.pickup[1]},
        "dropoff": {"lat": source.dropoff[0], "lon": source.dropoff[1]},
        "requested_in_min": opens_in_min + 10.0,
        "window_opens_in_min": opens_in_min,
        "window_closes_in_min": opens_in_min + 35.0,
        "service_min": 3.0,
        "priority": int(source.priority),
    }


def geneva_preset_day(index: int) -> Any:
    from rldispatch.scenarios.presets import make_preset

    return make_preset("geneva", index % 50)


def request_bodies(
    count: int, n_drivers: int = 10, n_open: int = 20, make_day: Any = geneva_preset_day
) -> list[dict[str, Any]]:
    """Suggest requests built from days ``make_day(index)`` (Geneva preset days by default):
    the booking, ``n_open`` other open bookings, drivers where bookings end; times in minutes
    from now. A day needs at least ``n_open + 1 + n_drivers`` bookings."""
    bodies = []
    for index in range(count):
        day = make_day(index)
        rng = np.random.default_rng(index)
        picks = rng.choice(len(day.bookings), size=n_open + 1 + n_drivers, replace=False)
        bookings = [
            _booking_body(
                day.bookings[int(picks[j])],
                f"bench-{index}" if j == 0 else f"bench-{index}-o{j}",
                float(rng.uniform(0.0, 60.0)),
            )
            for j in range(n_open + 1)
        ]
        drivers = []
        for k in range(n_drivers):
            where = day.bookings[int(picks[n_open + 1 + k])].dropoff
            drivers.append(
                {
                    "id": f"d{k + 1}",
                    "position": {"lat": where[0], "lon": where[1]},
                    "free_in_min": float(rng.choice([0.0, rng.uniform(0.0, 30.0)])),
                    "shift_ends_in_min": 400.0,
                    "rides_today": int(rng.integers(0, 8)),
                }
            )
        bodies.append(
            {
                "booking": bookings[0],
                "drivers": drivers,
                "open_bookings": bookings[1:],
                "minute_of_day": 600.0,
            }
        )
    return bodies


def percentiles_us(samples_s: list[float], cpu_s: list[float] | None = None) -> dict[str, float]:
    """Wall-clock p50/p99 (and, given, the same of CPU time: immune to preemption)."""
    values = np.asarray(samples_s) * 1e6
    figures = {
        "p50_us": float(np.percentile(values, 50)),
        "p99_us": float(np.percentile(values, 99)),
        "mean_us": float(values.mean()),
        "samples": int(values.size),
    }
    if cpu_s is not None:
        cpu = np.asarray(cpu_s) * 1e6
        figures["cpu_p50_us"] = float(np.percentile(cpu, 50))
        figures["cpu_p99_us"] = float(np.percentile(cpu, 99))
    return figures


def timed(function: Any, arguments: list[Any], repeats: int) -> dict[str, float]:
    """Call ``function`` on the arguments in turn; wall and thread-CPU time of each call."""
    wall, cpu = [], []
    for index in range(repeats):
        argument = arguments[index % len(arguments)]
        cpu_started, started = time.thread_time(), time.perf_counter()
        function(argument)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - cpu_started)
    return percentiles_us(wall, cpu)


def in_process(model: Path, repeats: int) -> dict[str, Any]:
    import torch

    from rldispatch.service.decisions.ab import ToggleState
    from rldispatch.service.decisions.manager import RLDispatchManager
    from rldispatch.service.decisions.snapshot import live_env
    from rldispatch.service.http.fleet_schemas import SuggestRequest

    torch.set_num_threads(1)
    rl_on = ToggleState(enabled=True, ab_ratio=1.0)
    day = RLDispatchManager(None).day
    bodies = request_bodies(200)
    requests = [SuggestRequest.model_validate(b).to_live(600.0, day) for b in bodies]
    results: dict[str, Any] = {}
    for runtime in ("numpy", "torch", "onnx"):
        manager = RLDispatchManager(model, runtime=runtime, state=rl_on)
        manager.warm_up()
        for request in requests:  # warm caches and thread-local envs
            manager.suggest(request)
        suggest = timed(manager.suggest, requests, repeats)
        stats = manager.statistics()
        state = requests[0].state.with_booking_first(requests[0].booking)
        batch = live_env(state, manager.day, manager.env_config).env.observation()[None, :]
        forward = timed(manager.model.q_function.q_values, [batch], repeats)
        results[runtime] = {
            "suggest": suggest,
            "forward_batch1": forward,
            "sources": stats.by_source,
            "fallbacks": stats.fallbacks,
        }
    fallback = RLDispatchManager(None)
    fallback.warm_up()
    results["fallback_only"] = {"suggest": timed(fallback.suggest, requests, repeats)}

    def snapshot(request: Any) -> None:
        state = request.state.with_booking_first(request.booking)
        live_env(state, fallback.day, fallback.env_config).env.observation()

    results["snapshot_only"] = {"suggest": timed(snapshot, requests, repeats)}
    return results


# --- HTTP ----------------------------------------------------------------------------------------


def http_request(method: str, path: str, token: str, body: Any | None = None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def call_once(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await read_response(reader)
    writer.close()
    return answer


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process and its live child processes (the worker
    processes of ``serve --workers N``), from Linux ``/proc``."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending += [int(child) for child in children]
    return total


async def load(
    port: int, server_pid: int, bodies: list[bytes], connections: int, duration_s: float
) -> dict:
    latencies: list[float] = []
    errors = {"status": 0, "connection": 0}
    sources: dict[str, int] = {}
    stop_at = time.monotonic() + duration_s

    async def worker(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        while time.monotonic() < stop_at:
            request = bodies[index % len(bodies)]
            index += connections
            started = time.perf_counter()
            try:
                writer.write(request)
                await writer.drain()
                status, payload = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError):
                errors["connection"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors["status"] += 1
            elif index < 20 * connections:
                source = json.loads(payload).get("source", "none")
                sources[source] = sources.get(source, 0) + 1
        writer.close()

    started = time.monotonic()
    server_cpu = process_cpu_s(server_pid)
    client_cpu = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.monotonic() - started
    server_cpu = process_cpu_s(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    values = np.asarray(latencies) * 1e3
    return {
        "duration_s": elapsed,
        "connections": connections,
        "requests": int(values.size),
        "requests_per_s": values.size / elapsed,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "server_cpu_ms_per_request": 1e3 * server_cpu / max(values.size, 1),
        "client_cpu_ms_per_request": 1e3 * client_cpu / max(values.size, 1),
        "errors": errors["status"] + errors["connection"],
        "error_kinds": errors,
        "sources_sampled": sources,
    }


async def over_http(
    model: Path,
    runtime: str,
    connections: int,
    duration_s: float,
    workers: int = 1,
    request_bodies_: list[dict[str, Any]] | None = None,
) -> dict:
    """:param request_bodies_: the suggest requests posted in turn (default: 500 of
    :func:`request_bodies`, drivers without plans)."""
    options = ("--model", str(model), "--runtime", runtime, "--workers", str(workers))
    with (
        tempfile.TemporaryDirectory() as folder,
        ServeProcess(Path(folder), *options, rl_on=True) as server,
    ):
        port = server.port
        posted = request_bodies(500) if request_bodies_ is None else request_bodies_
        bodies = [http_request("POST", "/rl/suggest", READ_TOKEN, b) for b in posted]
        await load(port, server.pid, bodies, connections, min(5.0, duration_s))  # warm-up
        result = await load(port, server.pid, bodies, connections, duration_s)
        status, payload = await call_once(port, http_request("GET", "/rl/metrics", READ_TOKEN))
        metrics = json.loads(payload)
        result["server_latency_ms"] = metrics["latency_ms"]
        result["server_store"] = metrics["database"]
        result["runtime"] = runtime
        result["workers"] = workers
        return result


def http_text(result: dict[str, Any]) -> str:
    """One line of the figures of :func:`over_http`."""
    return (
        f"{result['workers']} worker(s), {result['connections']} connections, "
        f"{result['duration_s']:.0f} s: {result['requests_per_s']:.0f} req/s  "
        f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
        f"errors {result['errors']} of {result['requests']}  server CPU "
        f"{result['server_cpu_ms_per_request']:.2f} ms/request  client CPU "
        f"{result['client_cpu_ms_per_request']:.2f} ms/request"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", type=Path, help="model file (default: prototype shapes)")
    parser.add_argument("--repeats", type=int, default=5000, help="in-process suggestions")
    parser.add_argument("--duration", type=float, default=60.0, help="HTTP load, seconds")
    parser.add_argument("--connections", type=int, default=8, help="HTTP connections")
    parser.add_argument("--http-runtime", default="onnx", help="server's model runtime")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        model = args.model or write_prototype_model(Path(folder) / "prototype.safetensors")
        report: dict[str, Any] = {
            "machine": machine_figures(),
            "model": str(args.model) if args.model else "prototype shapes, random weights",
        }
        report["in_process"] = in_process(model, args.repeats)
        for runtime, figures in report["in_process"].items():
            suggest = figures["suggest"]
            print(
                f"in process  {runtime:14s} p50 {suggest['p50_us']:7.1f} us  "
                f"p99 {suggest['p99_us']:7.1f} us   (CPU p50 {suggest['cpu_p50_us']:6.1f} us  "
                f"p99 {suggest['cpu_p99_us']:6.1f} us)"
            )
        if not args.skip_http:
            result = asyncio.run(
                over_http(model, args.http_runtime, args.connections, args.duration)
            )
            report["http"] = result
            print(f"HTTP ({result['runtime']}): {http_text(result)}")
        report["machine"]["load_average_at_end"] = os.getloadavg()
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
