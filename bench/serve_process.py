"""``rldispatch serve`` in a process of its own, for the benches: a loopback port, the benches'
tokens, the server's output in ``server.log`` of its data folder, started and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

READ_TOKEN = "bench-read-token-0123456789"
ADMIN_TOKEN = "bench-admin-token-0123456789"


def free_port() -> int:
    """A loopback port free now (port 0 will not do: the URL must be known)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, what: str, timeout_s: float = 120.0) -> None:
    """Until ``url`` answers 200; ``RuntimeError`` naming ``what`` once ``process`` has ended
    or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.2)


class ServeProcess:
    """``rldispatch serve --port PORT --data-dir DATA_DIR --log-level warning *options``,
    answering ``/healthz`` once made; with ``rl_on``, RL switched on for every booking."""

    def __init__(
        self, data_dir: Path, *options: str, port: int | None = None, rl_on: bool = False
    ) -> None:
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RLDISPATCH_")}
        environ.update(RLDISPATCH_TOKENS=READ_TOKEN, RLDISPATCH_ADMIN_TOKENS=ADMIN_TOKEN)
        command = [sys.executable, "-m", "rldispatch.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data_dir), "--log-level", "warning", *options]
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=environ
        )
        try:
            wait_for(f"{self.url}/healthz", self.process, f"the server (see {self.log.name})")
            if rl_on:
                toggle = httpx.post(
                    f"{self.url}/rl/toggle",
                    json={"enabled": True, "ab_ratio": 1.0},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                    timeout=30,
                )
                toggle.raise_for_status()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> float:
        """Terminate the server (SIGTERM: it drains and flushes its log) and wait for it;
        the seconds until it exited."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(120)
        self.log.close()
        return time.monotonic() - started

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
