"""``serve --workers N``: N worker processes, each with its own listening socket on the port.

Each worker binds the port with ``SO_REUSEPORT``, so the kernel spreads new connections over
the workers (by a hash of the connection). uvicorn's own multi-worker mode shares one socket,
and the first worker to wake accepts every waiting connection: a few keep-alive clients (a
dispatch system's connection pool) then all land on one worker while the others idle.

The supervisor (this process) starts the workers (``spawn``: each imports the app afresh),
restarts one that dies, and on SIGTERM or SIGINT passes the signal on and waits for them: each
worker shuts down gracefully (buffered records written).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from typing import Any

logger = logging.getLogger("rldispatch.service")

RESTART_PAUSE_S = 1.0
STOP_TIMEOUT_S = 30.0


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(app: str, host: str, port: int, uvicorn_options: dict[str, Any]) -> None:
    import uvicorn

    sock = _reuse_port_socket(host, port)
    config = uvicorn.Config(app, factory=True, host=host, port=port, **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(
    app: str, host: str, port: int, workers: int, uvicorn_options: dict[str, Any]
) -> None:
    """Run ``workers`` processes serving the app factory ``app`` ("module:function") on
    ``host:port`` until SIGTERM or SIGINT."""
    _reuse_port_socket(host, port).close()  # fails here, once, if the port is taken
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.Process:
        process = context.Process(
            target=_worker, args=(app, host, port, uvicorn_options), daemon=False
        )
        process.start()
        return process

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    logger.info("serving on %s:%d with %d worker processes", host, port, workers)
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    logger.error(
                        "worker %d exited (code %s): starting another",
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(RESTART_PAUSE_S)
                    processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn shuts the app down gracefully
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
