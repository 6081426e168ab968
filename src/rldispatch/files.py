"""Atomic file writes (a reader never sees half a file, a crash never leaves one) and the size
of a folder of them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename; the
    file gets ``mode`` (default: what the umask leaves of 0666)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_current_umask() if mode is None else mode)
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def remove_unfinished_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writes killed midway (``kill -9``, power loss) left in
    ``folder`` and below; the files they were replacing are intact. Returns what was removed."""
    folder = Path(folder)
    removed = []
    for temp in folder.rglob(".*.tmp") if folder.is_dir() else ():
        if temp.is_file():
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | Path) -> Any:
    """The JSON document in ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def describe_folder_size(folder: str | Path) -> str:
    """``folder`` and its size in MB, with its largest file's share when that is most of it."""
    folder = Path(folder)
    files = [path for path in folder.rglob("*") if path.is_file()]
    total = sum(path.stat().st_size for path in files)
    text = f"{folder}: {total / 1e6:.1f} MB"
    largest = max(files, key=lambda path: path.stat().st_size, default=None)
    if largest is not None and total and largest.stat().st_size > total / 2:
        share = largest.stat().st_size / total
        text += f" ({share:.0%} of it {largest.relative_to(folder)})"
    return text
