"""Training checkpoints: everything a killed run needs to go on where it left off.

A checkpoint is one file: a header line with the format and the SHA-256 of the payload, then
the payload written with ``torch.save``. It is written to a temporary file, flushed to disk
and renamed over the previous one, so a kill at any moment (even ``kill -9`` in the middle of
a write) leaves either the old or the new checkpoint, never half of one; a file damaged later
fails its checksum and is refused in one line. It is read back with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, no code.

It holds the learner (networks, optimizer, exploration generator, replay buffer unless the
run opted out), the counters, the metrics history and the best score. Checkpoints are taken
at the end of a day, so nothing of a half-played day needs saving.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from rldispatch.files import atomic_write_bytes

CHECKPOINT_FORMAT = b"rldispatch-train-checkpoint-2"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to this run."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file, fsync, rename) with its checksum."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = CHECKPOINT_FORMAT + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    return atomic_write_bytes(path, header + payload)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no code runs).

    :raises CheckpointError: if the file is unreadable, damaged or not a training checkpoint.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: no training checkpoint") from error
    header, _, payload = data.partition(b"\n")
    name, _, digest = header.partition(b" ")
    if name != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rldispatch training checkpoint of this version")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CheckpointError(f"{path}: damaged training checkpoint (checksum mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"{path}: unreadable training checkpoint ({error})") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not an rldispatch training checkpoint")
    return state
