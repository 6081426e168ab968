"""Training checkpoints: everything a killed run needs to go on where it left off.

A checkpoint is one file written with ``torch.save`` to a temporary file, flushed to disk and
renamed over the previous one, so a kill at any moment (even ``kill -9`` in the middle of a
write) leaves either the old or the new checkpoint, never half of one. It is read back with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only, no code.

It holds the agent (online and target networks, Adam state, exploration generator), the
replay buffer (its filled part, action masks bit-packed) unless the run opted out, the
environment's day generator, the counters and the metrics history. Checkpoints are taken at
the end of an episode, so nothing of a half-played day needs saving.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from rldispatch.files import atomic_write_bytes

CHECKPOINT_FORMAT = "rldispatch-train-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to this run."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no code runs).

    :raises CheckpointError: if the file is unreadable or not a training checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"{path}: unreadable training checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rldispatch training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')} is not supported "
            f"(this rldispatch reads version {CHECKPOINT_VERSION})"
        )
    return state
