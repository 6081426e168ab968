"""Where a bench writes its figures: a JSON file, written atomically in a folder it makes."""

from __future__ import annotations

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
