"""Where a bench writes its figures: a JSON file, written atomically in a folder it makes."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from rldispatch.files import atomic_write_json


def machine_figures() -> dict[str, Any]:
    """The machine a bench runs on: cores, platform, Python and the load average at start."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def write_report(path: str | Path | None, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` (nothing when None) and say where."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, report)
    print(f"report: {path}")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines log (none when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def append_row(path: str | Path, row: dict[str, Any]) -> None:
    """One row appended to a JSON-lines log by a single write: processes may share a log."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (json.dumps(row) + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)
