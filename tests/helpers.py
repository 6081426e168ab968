"""What tests of several packages share: the tiny configs of each kind, the Cordeau instances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.pairwise.config import PairwiseConfig

TINY = {
    "dqn": DQNConfig(
        hidden_sizes=(16,),
        buffer_size=2_000,
        batch_size=16,
        learning_starts=50,
        train_frequency=2,
        target_update_interval=100,
        epsilon_decay_steps=500,
    ),
    "pairwise": PairwiseConfig(
        hidden=8, head_hidden=8, batch_size=16, learning_starts=50, buffer_size=2_000
    ),
}
"""Each kind's config small enough to train a few days in seconds."""
CORDEAU_DIR_ENV = "RLDISPATCH_CORDEAU_DIR"
CORDEAU_DIR = Path(
    os.environ.get(CORDEAU_DIR_ENV)
    or (Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks" / "cordeau").resolve()
)
"""The Cordeau instances: ``$RLDISPATCH_CORDEAU_DIR``, else the shared benchmark folder, a
sibling of the repository root."""


def cordeau_dir() -> Path:
    """:data:`CORDEAU_DIR`; the test is skipped when it is absent."""
    if not CORDEAU_DIR.is_dir():
        pytest.skip(
            f"Cordeau instances not found at {CORDEAU_DIR} (expected beside the repository, or "
            f"at {CORDEAU_DIR_ENV})"
        )
    return CORDEAU_DIR
