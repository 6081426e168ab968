"""``serve``'s processes: workers die with their supervisor, a held port is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rldispatch.service.workers import check_port_free
from tests.service.helpers import ServerProcess

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")


def workers_of(pid: int) -> set[int]:
    """The live worker processes whose parent is ``pid`` (multiprocessing's resource tracker,
    also its child, left out)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in command:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.slow
def test_a_held_port_is_refused_and_killing_the_supervisor_stops_its_workers(
    tmp_path: Path,
) -> None:
    with ServerProcess(tmp_path / "data", extra_args=("--workers", "2")) as server:
        supervisor = server.process.pid
        assert wait_for(lambda: len(workers_of(supervisor)) == 2, 30)
        # A second serve on the port the workers hold is refused in one line.
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from rldispatch.cli import main; sys.exit(main())",
                "serve",
                "--port",
                str(server.port),
                "--data-dir",
                str(tmp_path / "second"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("RLDISPATCH_")},
        )
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rldispatch serve: error: port:")
        assert str(server.port) in lines[0]
        # Killing the supervisor takes its workers with it and frees the port.
        workers = workers_of(supervisor)
        assert len(workers) == 2
        os.kill(supervisor, signal.SIGKILL)
        server.process.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in workers), 10)
        check_port_free("127.0.0.1", server.port)  # raises while a worker still listens
