"""Builders shared by the service tests: model files, live requests, a real server."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import ModelMetadata, save_model
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.decisions.manager import LiveRequest
from rldispatch.service.decisions.snapshot import LiveDay, LiveEnv
from rldispatch.service.http.fleet_schemas import SuggestRequest

READ_TOKEN = "read-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
SERVER_START_TIMEOUT_S = 240.0
"""A loaded 2-core machine running tests in parallel takes over a minute to start a server."""


def make_model_file(
    path: Path,
    env_config: EnvConfig | None = None,
    hidden_sizes: tuple[int, ...] = (64, 64),
    seed: int = 0,
    preset: str = "geneva",
    tweak: Callable[[QNetwork], None] | None = None,
) -> Path:
    """A model file with random weights (changed by ``tweak``), through the model-file API."""
    env_config = env_config or EnvConfig()
    config = DQNConfig(hidden_sizes=hidden_sizes)
    torch.manual_seed(seed)
    network = QNetwork(env_config.observation_size, env_config.n_actions, hidden_sizes)
    if tweak is not None:
        with torch.no_grad():
            tweak(network)
    metadata = ModelMetadata(
        observation_size=env_config.observation_size,
        n_actions=env_config.n_actions,
        env_config=asdict(env_config),
        preset=preset,
        hyperparameters=asdict(config),
    )
    return save_model(path, network, metadata)


def make_pairwise_model_file(
    path: Path,
    seed: int = 0,
    tweak: Callable[[PairQNetwork], None] | None = None,
) -> Path:
    """A pairwise model file, untrained, through the model-file API.

    The network starts as training starts it (the known reward of an action added to zeroed
    output layers); its pair output weights are then drawn at random (``seed``), so its
    choice is not only the known reward's, and ``tweak`` may change it further.
    """

    def adjust(network: PairQNetwork) -> None:
        torch.nn.init.normal_(network.pair_out.weight, std=0.1)
        if tweak is not None:
            tweak(network)

    return save_untrained_model(path, seed, adjust)


def seek_detours_and_lateness(network: PairQNetwork) -> None:
    """A ``tweak`` for :func:`make_pairwise_model_file` that makes a model worse by
    construction: its pair scores are zeroed and its known reward's km and lateness weights
    negated, so it picks the pairs that add the most km and make the most pickups late."""
    network.pair_out.weight.zero_()
    network.known_reward[1:3].neg_()


def suggest_body(
    booking_id: str = "b1",
    n_drivers: int = 5,
    n_open: int = 3,
    seed: int = 0,
    minute_of_day: float | None = 600.0,
) -> dict[str, Any]:
    """A realistic request: Geneva drivers and bookings of a preset day, times from now."""
    day = make_preset("geneva", seed)
    rng = np.random.default_rng(seed)

    def booking(index: int, identifier: str) -> dict[str, Any]:
        source = day.bookings[index % len(day.bookings)]
        opens = float(rng.uniform(0.0, 40.0))
        return {
            "id": identifier,
            "pickup": {"lat": source.pickup[0], "lon": source.pickup[1]},
            "dropoff": {"lat": source.dropoff[0], "lon": source.dropoff[1]},
            "requested_in_min": opens + 10.0,
            "window_opens_in_min": opens,
            "window_closes_in_min": opens + 35.0,
            "service_min": 3.0,
            "priority": int(source.priority),
            "load": 1,
        }

    drivers = []
    for index in range(n_drivers):
        where = day.bookings[(7 * index + 3) % len(day.bookings)].dropoff
        drivers.append(
            {
                "id": f"d{index + 1}",
                "position": {"lat": where[0], "lon": where[1]},
                "free_in_min": float(rng.choice([0.0, rng.uniform(0.0, 20.0)])),
                "shift_ends_in_min": 300.0,
                "capacity": 1,
                "rides_today": int(rng.integers(0, 8)),
            }
        )
    body: dict[str, Any] = {
        "booking": booking(0, booking_id),
        "drivers": drivers,
        "open_bookings": [booking(i + 1, f"{booking_id}-o{i + 1}") for i in range(n_open)],
    }
    if minute_of_day is not None:
        body["minute_of_day"] = minute_of_day
    return body


def live_request(**kwargs: Any) -> LiveRequest:
    """:func:`suggest_body` as the manager's input."""
    day = LiveDay.from_preset("geneva")
    return SuggestRequest.model_validate(suggest_body(**kwargs)).to_live(600.0, day)


def switch_rl_on(url: str) -> None:
    """RL on for every request of the server at ``url`` (``/rl/toggle`` with the admin token)."""
    toggled = httpx.post(
        f"{url}/rl/toggle",
        json={"enabled": True, "ab_ratio": 1.0},
        headers=auth(ADMIN_TOKEN),
        timeout=30,
    )
    assert toggled.status_code == 200, toggled.text


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``rldispatch serve`` in a subprocess on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        model: Path | None = None,
        database_url: str | None = None,
        tokens: bool = True,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"server-{self.port}.log"
        command = [
            sys.executable,
            "-c",
            "import sys; from rldispatch.cli import main; sys.exit(main())",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "info",
            *extra_args,
        ]
        if model is not None:
            command += ["--model", str(model)]
        if database_url is not None:
            command += ["--database-url", database_url]
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("RLDISPATCH_") or key == "RLDISPATCH_TEST_POSTGRES_URL"
        }
        if tokens:
            environ["RLDISPATCH_TOKENS"] = READ_TOKEN
            environ["RLDISPATCH_ADMIN_TOKENS"] = ADMIN_TOKEN
        environ.update(env or {})
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=environ
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        # One client for every poll: each new client builds a TLS context (some 20 ms of CPU,
        # taken from the server starting on the same cores), though the URL is plain HTTP.
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log()}")
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {SERVER_START_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (graceful: the store writes what it holds), then wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedServer:
    """The app of ``create_app`` under uvicorn in a thread of this process, on a free port:
    the real server without a new interpreter's start-up time."""

    def __init__(
        self,
        data_dir: Path,
        model: Path | None = None,
        database_url: str | None = None,
        **options: Any,
    ) -> None:
        """:param options: further :meth:`ServiceConfig.from_env` options."""
        import uvicorn

        from rldispatch.service.config import ServiceConfig
        from rldispatch.service.http.app import create_app

        config = ServiceConfig.from_env(
            {"RLDISPATCH_TOKENS": READ_TOKEN, "RLDISPATCH_ADMIN_TOKENS": ADMIN_TOKEN},
            model_path=model,
            data_dir=data_dir,
            database_url=database_url,
            **options,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(config)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("threaded server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Graceful: the app's shutdown writes what the store holds."""
        self.server.should_exit = True
        self.thread.join(30)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


PLAIN_HTTP = ssl.create_default_context()
"""The TLS context to pass as ``verify`` to an ``httpx.Client`` opened in a loop: the
services under test speak plain HTTP, and a client given no context builds one each time
(some 20 ms of CPU)."""


def auth(token: str = READ_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def round_looking_ahead_over_http(
    data_dir: Path, model: Path, body: dict, candidates: int, timeout_s: float
) -> tuple[dict, dict]:
    """``body`` posted to ``/rl/round`` of a server of ``model`` whose answers look ahead at
    ``candidates`` candidates with no budget, RL on (the round within ``timeout_s``): the
    answer and ``/rl/status`` after it."""
    with ThreadedServer(
        data_dir, model=model, lookahead=candidates, lookahead_budget_ms=0
    ) as server:
        switch_rl_on(server.url)
        response = httpx.post(
            f"{server.url}/rl/round", json=body, headers=auth(), timeout=timeout_s
        )
        assert response.status_code == 200, response.text
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
    return response.json(), status


def round_in_process(live: LiveEnv, act: Callable[[DispatchEnv], int]) -> list[tuple[str, str]]:
    """The (booking id, driver id) of each assignment ``act`` makes on ``live``'s env until it
    waits, nothing more can be assigned or nothing is open: a round played here, apart from
    the service's own loop, to check the service's against."""
    env, made = live.env, []
    while env.action_masks()[1:].any() and not env.sim.done:
        action = act(env)
        if action == 0:
            break
        assigned = env.assign(action)
        made.append((live.booking_ids[assigned.booking], live.driver_ids[assigned.driver]))
    return made
