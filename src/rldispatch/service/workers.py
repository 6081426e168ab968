"""``serve --workers N``: N worker processes, each with its own listening socket on the port.

Each worker binds the port with ``SO_REUSEPORT``, so the kernel spreads new connections over
the workers (by a hash of the connection). uvicorn's own multi-worker mode shares one socket,
and the first worker to wake accepts every waiting connection: a few keep-alive clients (a
dispatch system's connection pool) then all land on one worker while the others idle.

The supervisor (this process) starts the workers (``spawn``: each imports the app afresh),
restarts one that dies, and on SIGTERM or SIGINT passes the signal on and waits for them: each
worker shuts down gracefully (buffered records written). Workers are tied to it: each asks
the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a supervisor
killed with ``kill -9`` leaves no worker serving an old configuration. And a new ``serve``
refuses a port another process still listens on (:func:`check_port_free`), whatever
``SO_REUSEPORT`` would allow.

Every server here (one process or a worker) shuts down within a bound: on SIGTERM the work
of requests in progress is stopped at once (their rounds end ``budget``), connections get
:data:`GRACEFUL_SHUTDOWN_S` to finish, then the log's buffer is written within
:data:`~rldispatch.service.log.store.CLOSE_TIMEOUT_S`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

from rldispatch.service.decisions.request_budget import RequestBudget

logger = logging.getLogger("rldispatch.service")

RESTART_PAUSE_S = 1.0
STOP_TIMEOUT_S = 30.0
GRACEFUL_SHUTDOWN_S = 5.0
"""How long connections in progress get to finish once shutdown begins."""
PR_SET_PDEATHSIG = 1


class Server(uvicorn.Server):
    """uvicorn's server that stops the work of requests in progress when asked to exit."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler must not take locks the interrupted code may hold: a thread does.
        threading.Thread(target=RequestBudget.stop_all, args=("shutdown",), daemon=True).start()
        super().handle_exit(sig, frame)


def serve(
    app: Any, host: str, port: int, sockets: list[socket.socket] | None = None, **options: Any
) -> None:
    """Run ``app`` (an app, or a factory's "module:function" with ``factory=True``) until
    SIGTERM or SIGINT, shutting down within the bound above."""
    config = uvicorn.Config(
        app, host=host, port=port, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, **options
    )
    Server(config).run(sockets=sockets)


def check_port_free(host: str, port: int) -> None:
    """Raise ``OSError`` when another socket listens on ``host:port`` (bound without
    ``SO_REUSEPORT``, so old workers that share the port with it are found too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no holder
        probe.bind((host, port))


def exit_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux; elsewhere a
    no-op), and exit now if the parent is gone already."""
    name = ctypes.util.find_library("c")
    try:
        prctl = ctypes.CDLL(name, use_errno=True).prctl if name else None
    except (OSError, AttributeError):
        prctl = None
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # died before the request took effect
        os._exit(0)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(
    app: str, host: str, port: int, uvicorn_options: dict[str, Any], parent_pid: int
) -> None:
    exit_with_parent(parent_pid)
    sock = _reuse_port_socket(host, port)
    serve(app, host, port, sockets=[sock], factory=True, **uvicorn_options)


def run_workers(
    app: str, host: str, port: int, workers: int, uvicorn_options: dict[str, Any]
) -> None:
    """Run ``workers`` processes serving the app factory ``app`` ("module:function") on
    ``host:port`` until SIGTERM or SIGINT."""
    check_port_free(host, port)  # fails here, once, if the port is taken
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.Process:
        process = context.Process(
            target=_worker, args=(app, host, port, uvicorn_options, os.getpid()), daemon=False
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
