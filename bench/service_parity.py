"""Parity of the served policy with ``evaluate`` on held-out days, through a real server.

For each policy (a pairwise model, a flat model, the heuristic fallback) ``rldispatch serve``
runs in its own process on a loopback port and each day is replayed the way
``docs/service.md`` tells an integrator to run it: at every decision the simulator's state
goes out as ``POST /rl/round`` and the served assignments are applied in order
(:func:`rldispatch.service.replay.replay_day`). At each applied decision the in-process
policy is asked what it would do; the bench reports the decisions that differ and compares
each replayed day's figures with ``evaluate``'s on the same day.

Without ``--pairwise-model`` an untrained pairwise network is used (the known reward of an
action on zeroed output layers: it plays well already); without ``--flat-model`` a flat
network with random weights. Usage::

    .venv/bin/python bench/service_parity.py --days 20 --json bench/service_parity.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.replay import replay_day
from rldispatch.service.snapshot import LiveDay

READ_TOKEN = "bench-read-token-0123456789"
ADMIN_TOKEN = "bench-admin-token-0123456789"


def random_flat_model(path: Path) -> Path:
    import torch

    from rldispatch.agents.dqn.config import DQNConfig
    from rldispatch.agents.dqn.model_file import ModelMetadata, save_model
    from rldispatch.agents.dqn.network import QNetwork

    config = EnvConfig()
    torch.manual_seed(0)
    hidden = (64, 64)
    network = QNetwork(config.observation_size, config.n_actions, hidden)
    metadata = ModelMetadata(
        observation_size=config.observation_size,
        n_actions=config.n_actions,
        env_config=asdict(config),
        preset="geneva",
        hyperparameters=asdict(DQNConfig(hidden_sizes=hidden)),
    )
    return save_model(path, network, metadata)


class Server:
    """``rldispatch serve`` on a free loopback port (port 0 is not available: the URL must
    be known), tokens from the environment."""

    def __init__(self, data_dir: Path, model: Path | None) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RLDISPATCH_")}
        environ.update(RLDISPATCH_TOKENS=READ_TOKEN, RLDISPATCH_ADMIN_TOKENS=ADMIN_TOKEN)
        command = [sys.executable, "-m", "rldispatch.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data_dir), "--log-level", "warning"]
        if model is not None:
            command += ["--model", str(model)]
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=environ
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120.0)
        deadline = time.monotonic() + 120.0
        while True:
            try:
                if self.client.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: see {data_dir / 'server.log'}")
            time.sleep(0.2)

    def post(self, path: str, body: dict[str, Any], token: str = READ_TOKEN) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
        return response.json()

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


def parity(name: str, server: Server, policy: Any, config: EnvConfig, days: list, rl: bool) -> dict:
    from rldispatch.training.evaluation import evaluate_policy

    if rl:
        server.post("/rl/toggle", {"enabled": True, "ab_ratio": 1.0}, ADMIN_TOKEN)
    sources: dict[str, int] = {}

    def post_round(body: dict[str, Any]) -> dict[str, Any]:
        answer = server.post("/rl/round", body)
        sources[answer["source"]] = sources.get(answer["source"], 0) + 1
        return answer

    start = LiveDay.from_preset("geneva").start_min
    started = time.perf_counter()
    replayed = [replay_day(post_round, policy, day, config, start) for day in days]
    elapsed = time.perf_counter() - started
    evaluated = evaluate_policy(policy, days, config)
    same_days = sum(
        r.metrics.as_dict() == e.as_dict() for r, e in zip(replayed, evaluated, strict=True)
    )
    result = {
        "days": len(days),
        "decisions": sum(r.decisions for r in replayed),
        "differing_decisions": sum(r.differing for r in replayed),
        "rounds": sum(r.rounds for r in replayed),
        "days_with_identical_metrics": same_days,
        "reward_per_day_served": sum(r.metrics.reward for r in replayed) / len(days),
        "reward_per_day_evaluate": sum(e.reward for e in evaluated) / len(days),
        "round_sources": sources,
        "replay_s": elapsed,
    }
    print(
        f"{name:9s}: {result['decisions']} decisions in {result['rounds']} rounds, "
        f"{result['differing_decisions']} differing; identical day metrics on "
        f"{same_days}/{len(days)} days; reward/day served {result['reward_per_day_served']:.1f}"
        f" vs evaluate {result['reward_per_day_evaluate']:.1f} ({elapsed:.0f} s)"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--pairwise-model", type=Path)
    parser.add_argument("--flat-model", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    days = [make_preset("geneva", HELD_OUT_SEEDS.start + k) for k in range(args.days)]
    report: dict[str, Any] = {"preset": "geneva", "seeds": [HELD_OUT_SEEDS.start, args.days]}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pairwise = args.pairwise_model or save_untrained_model(root / "pairwise.safetensors")
        flat = args.flat_model or random_flat_model(root / "flat.safetensors")
        runs = [("pairwise", pairwise), ("flat", flat), ("heuristic", None)]
        for name, model in runs:
            server = Server(root / name, model)
            try:
                if model is None:
                    policy = make_baseline("insertion")
                    config = EnvConfig(max_drivers=max(len(d.drivers) for d in days))
                else:
                    learned = load_learned_model(model)
                    policy, config = learned.policy, learned.env_config_for(days)
                report[name] = parity(name, server, policy, config, days, rl=model is not None)
                report[name]["model"] = None if model is None else str(model)
            finally:
                server.stop()
    report["load_average"] = os.getloadavg()
    if args.json:
        atomic_write_json(args.json, report)
    failed = any(
        report[name]["differing_decisions"]
        or report[name]["days_with_identical_metrics"] != args.days
        for name, _ in runs
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
