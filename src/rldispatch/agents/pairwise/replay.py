"""Replay for the pairwise agent: decision states in a padded ring buffer, n-step returns.

A day's decisions are written together once the day is over (:meth:`PairReplayBuffer.add_day`),
each state once, stored padded to ``(max_drivers, visible_slots, max_pairs)`` with its sizes. Each
entry holds its action (``0`` wait, ``1 + p`` candidate pair ``p``), its n-step return, the
discount to its bootstrap state (``gamma^k``, or 0 when the day ended first) and where that
state is in the buffer. The bootstrap state is always written after its entry, so it is still
there as long as the entry is. A sample comes packed (no padding, see :class:`PairBatch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rldispatch.agents.double_dqn import n_step_returns
from rldispatch.agents.pairwise.features import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    GLOBAL_FEATURES,
    PAIR_FEATURES,
    PairState,
)
from rldispatch.agents.pairwise.network import PairBatch


@dataclass(frozen=True)
class PairReplaySample:
    """Sampled transitions: states, next (bootstrap) states, and what happened between."""

    states: PairBatch
    next_states: PairBatch
    actions: torch.Tensor  # (B,) long: 0 wait, 1 + p pair p of the state
    action_pairs: torch.Tensor  # (B,) long: the action's row in the packed pairs, -1 = wait
    returns: torch.Tensor  # (B,) n-step discounted, scaled reward
    discounts: torch.Tensor  # (B,) gamma^k, 0 when the day ended before the bootstrap
    indices: np.ndarray


class PairReplayBuffer:
    """Ring buffer of ``capacity`` decision states (float32, padded).

    :param max_drivers: the largest fleet a state may have.
    :param max_bookings: visible slots.
    :param max_pairs: candidate pairs per state.
    """

    def __init__(
        self,
        capacity: int,
        max_drivers: int,
        max_bookings: int,
        max_pairs: int,
        seed: int = 0,
    ) -> None:
        self.capacity = int(capacity)
        self.max_drivers = int(max_drivers)
        self.max_bookings = int(max_bookings)
        self.max_pairs = int(max_pairs)
        c = self.capacity
        self.drivers = np.zeros((c, max_drivers, len(DRIVER_FEATURES)), dtype=np.float32)
        self.bookings = np.zeros((c, max_bookings, len(BOOKING_FEATURES)), dtype=np.float32)
        self.pairs = np.zeros((c, max_pairs, len(PAIR_FEATURES)), dtype=np.float32)
        self.pair_driver = np.zeros((c, max_pairs), dtype=np.int16)
        self.pair_slot = np.zeros((c, max_pairs), dtype=np.int16)
        self.globals = np.zeros((c, len(GLOBAL_FEATURES)), dtype=np.float32)
        self.n_drivers = np.zeros(c, dtype=np.int64)
        self.n_bookings = np.zeros(c, dtype=np.int64)
        self.n_pairs = np.zeros(c, dtype=np.int64)
        self.actions = np.zeros(c, dtype=np.int64)
        self.returns = np.zeros(c, dtype=np.float32)
        self.discounts = np.zeros(c, dtype=np.float32)
        self.bootstrap = np.zeros(c, dtype=np.int64)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add_day(
        self,
        states: Sequence[PairState],
        actions: Sequence[int],
        rewards: Sequence[float],
        gamma: float,
        n_step: int,
    ) -> None:
        """Store one finished day: its decision states, actions (``0`` wait, ``1 + p``) and
        (scaled) rewards, with n-step returns."""
        steps = len(states)
        if not (steps == len(actions) == len(rewards)):
            raise ValueError("add_day: states, actions and rewards differ in length")
        if steps > self.capacity:
            raise ValueError(f"add_day: a day of {steps} steps exceeds the capacity")
        returns, discounts, offsets = n_step_returns(rewards, gamma, n_step)
        base = self.position
        for t, state in enumerate(states):
            i = (base + t) % self.capacity
            self.write_state(i, state)
            action = int(actions[t])
            if not 0 <= action <= state.n_pairs:
                raise ValueError(f"add_day: action {action} at step {t} is not 0..{state.n_pairs}")
            self.actions[i] = action
            self.returns[i] = returns[t]
            self.discounts[i] = discounts[t]
            self.bootstrap[i] = (base + t + offsets[t]) % self.capacity
        self.position = (base + steps) % self.capacity
        self.size = min(self.size + steps, self.capacity)

    ARRAYS = (
        "drivers",
        "bookings",
        "pairs",
        "pair_driver",
        "pair_slot",
        "globals",
        "n_drivers",
        "n_bookings",
        "n_pairs",
        "actions",
        "returns",
        "discounts",
        "bootstrap",
    )

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the buffer and the sampler's state (for checkpoints)."""
        filled = slice(0, self.size)
        state: dict[str, Any] = {
            name: torch.from_numpy(getattr(self, name)[filled].copy()) for name in self.ARRAYS
        }
        shape = (self.capacity, self.max_drivers, self.max_bookings, self.max_pairs)
        state.update(shape=list(shape), position=self.position, size=self.size)
        state["rng"] = self.rng.bit_generator.state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shape = [self.capacity, self.max_drivers, self.max_bookings, self.max_pairs]
        if list(state["shape"]) != shape:
            raise ValueError(
                f"replay buffer: checkpoint shape {list(state['shape'])} differs from {shape}"
            )
        size = int(state["size"])
        for name in self.ARRAYS:
            getattr(self, name)[:size] = state[name].numpy()
        self.size = size
        self.position = int(state["position"])
        self.rng.bit_generator.state = state["rng"]

    def write_state(self, i: int, state: PairState) -> None:
        """Store ``state`` in entry ``i`` (padded, with its sizes)."""
        d, m, p = state.drivers.shape[0], state.bookings.shape[0], state.n_pairs
        if d > self.max_drivers or m > self.max_bookings or p > self.max_pairs:
            raise ValueError(
                f"replay buffer: a state of {d} drivers, {m} bookings, {p} pairs does not fit "
                f"({self.max_drivers}, {self.max_bookings}, {self.max_pairs})"
            )
        self.drivers[i, :d] = state.drivers
        self.drivers[i, d:] = 0.0
        self.bookings[i, :m] = state.bookings
        self.bookings[i, m:] = 0.0
        self.pairs[i, :p] = state.pairs
        self.pairs[i, p:] = 0.0
        self.pair_driver[i, :p] = state.pair_driver
        self.pair_driver[i, p:] = 0
        self.pair_slot[i, :p] = state.pair_slot
        self.pair_slot[i, p:] = 0
        self.globals[i] = state.globals
        self.n_drivers[i], self.n_bookings[i], self.n_pairs[i] = d, m, p

    def batch(self, indices: np.ndarray) -> PairBatch:
        """The states at ``indices``, packed into one batch (only their filled rows are
        read)."""
        n_drivers = self.n_drivers[indices]
        n_bookings = self.n_bookings[indices]
        n_pairs = self.n_pairs[indices]
        driver_rows, driver_offset = filled_rows(indices, n_drivers, self.max_drivers)
        booking_rows, booking_offset = filled_rows(indices, n_bookings, self.max_bookings)
        pair_rows, _ = filled_rows(indices, n_pairs, self.max_pairs)
        pair_driver = self.pair_driver.reshape(-1)[pair_rows].astype(np.int64)
        pair_driver += np.repeat(driver_offset, n_pairs)
        pair_booking = self.pair_slot.reshape(-1)[pair_rows].astype(np.int64)
        pair_booking += np.repeat(booking_offset, n_pairs)
        return PairBatch(
            drivers=torch.from_numpy(self.drivers.reshape(-1, len(DRIVER_FEATURES))[driver_rows]),
            bookings=torch.from_numpy(
                self.bookings.reshape(-1, len(BOOKING_FEATURES))[booking_rows]
            ),
            pairs=torch.from_numpy(self.pairs.reshape(-1, len(PAIR_FEATURES))[pair_rows]),
            pair_driver=torch.from_numpy(pair_driver),
            pair_booking=torch.from_numpy(pair_booking),
            pair_state=torch.from_numpy(np.repeat(np.arange(indices.size), n_pairs)),
            globals=torch.from_numpy(self.globals[indices]),
        )

    def sample(self, batch_size: int) -> PairReplaySample:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("replay buffer: cannot sample from an empty buffer")
        indices = self.rng.integers(0, self.size, size=batch_size)
        actions = self.actions[indices]
        n_pairs = self.n_pairs[indices]
        first_pair = np.cumsum(n_pairs) - n_pairs
        action_pairs = np.where(actions > 0, first_pair + actions - 1, -1)
        return PairReplaySample(
            states=self.batch(indices),
            next_states=self.batch(self.bootstrap[indices]),
            actions=torch.from_numpy(actions),
            action_pairs=torch.from_numpy(action_pairs),
            returns=torch.from_numpy(self.returns[indices]),
            discounts=torch.from_numpy(self.discounts[indices]),
            indices=indices,
        )


def filled_rows(
    indices: np.ndarray, counts: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``0 .. counts[i]-1`` of entries ``indices`` in a ``(capacity * width)`` flat
    layout, entry after entry, and where each entry's rows start in that packed order."""
    offsets = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
    return np.repeat(indices * width, counts) + within, offsets
