"""The pairwise replay buffer packs stored states as :meth:`PairBatch.from_states` does."""

from __future__ import annotations

import numpy as np
import torch

from rldispatch.agents.pairwise.network import PairBatch
from rldispatch.agents.pairwise.replay import PairReplayBuffer
from tests.agents.test_pairwise_agent import tiny_state


def test_a_sampled_batch_equals_the_same_states_packed_directly() -> None:
    states = [
        tiny_state(3, 2, [(0, 0), (2, 1), (1, 1)], seed=1),
        tiny_state(1, 1, [], seed=2),
        tiny_state(2, 3, [(1, 2)], seed=3),
        tiny_state(3, 3, [(0, 0), (0, 1), (1, 2), (2, 2)], seed=4),
    ]
    buffer = PairReplayBuffer(capacity=6, max_drivers=3, max_bookings=3, max_pairs=5)
    buffer.add_day(states, [1, 0, 1, 4], [0.0] * 4, gamma=0.9, n_step=1)
    indices = np.array([3, 0, 1, 3, 2])
    packed = buffer.batch(indices)
    expected = PairBatch.from_states([states[i] for i in indices])
    for name in ("drivers", "bookings", "pairs", "pair_driver", "pair_booking", "pair_state"):
        assert torch.equal(getattr(packed, name), getattr(expected, name)), name
    assert torch.equal(packed.globals, expected.globals)
