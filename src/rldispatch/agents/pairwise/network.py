"""The pairwise Q-network: one score per (driver, booking) candidate pair, plus wait.

Every candidate pair is scored by the same weights from its driver's row, its booking's row,
its own pair row and the global row, so one network serves any number of drivers and
bookings, and reordering them reorders the scores and nothing else::

    h1[p] = relu(Wd driver[d(p)] + Wb booking[b(p)] + Wp pair[p] + Wg global + b1)
    h2[p] = relu(W2 h1[p] + Wc [mean_p h1, max_p h1] + b2)          # one round of context
    A[p]  = w3 . h2[p] + b3
    V, A_wait = head([mean_p h2, max_p h2, relu(Wg global + b1)])
    Q[p] = r[p] + V + A[p] - mean(A)                 # dueling, the mean over wait and pairs
    Q_wait = r_wait + V + A_wait - mean(A)

``r`` is the reward of the action known when it is chosen (:class:`KnownReward`: the
assignment bonus, the km it adds, the pickups it makes late), so the network learns only the
value of what follows, the post-decision value of approximate dynamic programming for fleet
management. With all-zero known rewards it is a plain dueling Q-network.
The first layer's weights are kept by input (driver, booking, pair, global). A batch is
packed (:class:`PairBatch`): the pairs of all its states one after another, pooled per
state, so no work goes to padding. On a batch the first layer is one product of each pair's
inputs side by side (:attr:`PairBatch.pair_inputs`) with the four weights side by side: a
gradient step is a few dozen small tensor operations whose fixed cost dominates, so fewer
and larger operations train faster (``bench/pairwise_train_speed.py``).

:class:`NumpyPairQ` runs the same forward pass on one state on views of the torch weights,
compiled (:mod:`~rldispatch.agents.pairwise.forward_kernel`; acting needs one decision at a
time); there the driver and booking parts are computed once per driver and booking, not once
per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rldispatch.agents.pairwise.features import (
    BOOKING_FEATURES,
    DRIVER_FEATURES,
    GLOBAL_FEATURES,
    PAIR_FEATURES,
    PairState,
)
from rldispatch.agents.pairwise.forward_kernel import pair_q_kernel


@dataclass(frozen=True)
class PairBatch:
    """A batch of states, packed: the rows of every state one after another, no padding.

    ``pair_driver`` and ``pair_booking`` index the packed ``drivers`` and ``bookings`` rows,
    ``pair_state`` the state each pair belongs to.
    """

    drivers: torch.Tensor  # (sum D, FD)
    bookings: torch.Tensor  # (sum M, FB)
    pairs: torch.Tensor  # (sum P, FP)
    pair_driver: torch.Tensor  # (sum P,) long
    pair_booking: torch.Tensor  # (sum P,) long
    pair_state: torch.Tensor  # (sum P,) long
    globals: torch.Tensor  # (B, FG)

    @property
    def n_states(self) -> int:
        return int(self.globals.shape[0])

    @cached_property
    def pair_counts(self) -> torch.Tensor:
        """``(B,)`` candidate pairs of each state, as floats (computed once per batch)."""
        return torch.bincount(self.pair_state, minlength=self.n_states).to(torch.float32)

    @cached_property
    def pair_inputs(self) -> torch.Tensor:
        """``(sum P, FD + FB + FP + FG)`` each pair's driver, booking, pair and global rows
        side by side: the first layer's input (computed once per batch)."""
        return torch.cat(
            [
                self.drivers.index_select(0, self.pair_driver),
                self.bookings.index_select(0, self.pair_booking),
                self.pairs,
                self.globals.index_select(0, self.pair_state),
            ],
            dim=1,
        )

    @property
    def pair_offsets(self) -> torch.Tensor:
        """``(B,)`` index of each state's first pair."""
        counts = torch.bincount(self.pair_state, minlength=self.n_states)
        return torch.cumsum(counts, 0) - counts

    @classmethod
    def from_states(cls, states: list[PairState]) -> PairBatch:
        """Pack a list of states into one batch."""
        driver_offset = np.cumsum([0] + [s.drivers.shape[0] for s in states])
        booking_offset = np.cumsum([0] + [s.bookings.shape[0] for s in states])

        def packed(arrays: list[np.ndarray], width: int) -> torch.Tensor:
            rows = [a.reshape(-1, width) for a in arrays]
            return torch.from_numpy(np.concatenate(rows).astype(np.float32, copy=False))

        return cls(
            drivers=packed([s.drivers for s in states], len(DRIVER_FEATURES)),
            bookings=packed([s.bookings for s in states], len(BOOKING_FEATURES)),
            pairs=packed([s.pairs for s in states], len(PAIR_FEATURES)),
            pair_driver=torch.from_numpy(
                np.concatenate([s.pair_driver + driver_offset[i] for i, s in enumerate(states)])
            ).long(),
            pair_booking=torch.from_numpy(
                np.concatenate([s.pair_slot + booking_offset[i] for i, s in enumerate(states)])
            ).long(),
            pair_state=torch.from_numpy(
                np.concatenate([np.full(s.n_pairs, i) for i, s in enumerate(states)])
            ).long(),
            globals=torch.from_numpy(np.stack([s.globals for s in states]).astype(np.float32)),
        )


PAIR_ADDED_KM = PAIR_FEATURES.index("added_10km")
PAIR_LATE = PAIR_FEATURES.index("late")
PAIR_KNOCK_ON_LATE = PAIR_FEATURES.index("knock_on_late")
KNOWN_REWARD_COLUMNS = torch.tensor([PAIR_ADDED_KM, PAIR_LATE, PAIR_KNOCK_ON_LATE])
KNOWN_REWARD_WEIGHT_OF_COLUMN = torch.tensor([1, 2, 2])
"""The pair columns the known reward reads, and which :class:`KnownReward` weight (as in
:meth:`KnownReward.as_tensor`) multiplies each."""


@dataclass(frozen=True)
class KnownReward:
    """The part of an action's (scaled) reward that is known when it is chosen.

    An assignment pays ``assignment`` plus ``per_10km`` per 10 km it adds to the plan plus
    ``per_late`` per pickup it makes late (its own and those it pushes back); waiting pays
    ``wait``. The network adds this to what it learns (the value of what comes after).
    All zeros: a plain Q-network.
    """

    assignment: float = 0.0
    per_10km: float = 0.0
    per_late: float = 0.0
    wait: float = 0.0

    def as_tensor(self) -> torch.Tensor:
        values = [self.assignment, self.per_10km, self.per_late, self.wait]
        return torch.tensor(values, dtype=torch.float32)


class PairQNetwork(nn.Module):
    """Scores a :class:`PairBatch`: ``(Q_wait (B,), Q of each pair (sum P,))``.

    :param hidden: width of the per-pair layers.
    :param head_hidden: width of the state head (value and wait).
    :param known_reward: added to the learned scores; with it the output layers start at
        zero, so the untrained network picks the action with the best known reward.
    """

    def __init__(
        self, hidden: int = 64, head_hidden: int = 64, known_reward: KnownReward | None = None
    ) -> None:
        super().__init__()
        self.hidden = int(hidden)
        self.head_hidden = int(head_hidden)
        self.register_buffer("known_reward", (known_reward or KnownReward()).as_tensor())
        self.driver_in = nn.Linear(len(DRIVER_FEATURES), hidden, bias=False)
        self.booking_in = nn.Linear(len(BOOKING_FEATURES), hidden, bias=False)
        self.pair_in = nn.Linear(len(PAIR_FEATURES), hidden, bias=False)
        self.global_in = nn.Linear(len(GLOBAL_FEATURES), hidden)
        self.pair_hidden = nn.Linear(hidden, hidden)
        self.context = nn.Linear(2 * hidden, hidden, bias=False)
        self.pair_out = nn.Linear(hidden, 1)
        self.head = nn.Sequential(
            nn.Linear(3 * hidden, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 2)
        )
        if known_reward is not None and any(known_reward.as_tensor()):
            for layer in (self.pair_out, self.head[2]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def first_layer_weight(self) -> torch.Tensor:
        """``(H, FD + FB + FP + FG)``: the driver, booking, pair and global input weights
        side by side, for :attr:`PairBatch.pair_inputs` (one product instead of four, and
        no scatter of gradients back to the driver and booking rows)."""
        return torch.cat(
            [
                self.driver_in.weight,
                self.booking_in.weight,
                self.pair_in.weight,
                self.global_in.weight,
            ],
            dim=1,
        )

    def known_pair_reward(self, pairs: torch.Tensor) -> torch.Tensor:
        # One product: per_10km * added_10km + per_late * (late + knock_on_late).
        weights = self.known_reward.index_select(0, KNOWN_REWARD_WEIGHT_OF_COLUMN)
        return pairs.index_select(1, KNOWN_REWARD_COLUMNS) @ weights + self.known_reward[0]

    def forward(self, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        state = batch.pair_state
        n_states = batch.n_states
        global_part = self.global_in(batch.globals)  # (B, H), includes the first-layer bias
        # In place where autograd allows: the (sum P, H) tensors are the costly ones.
        first = F.linear(batch.pair_inputs, self.first_layer_weight(), self.global_in.bias)
        h1 = torch.relu_(first)
        counts = batch.pair_counts
        context = self.context(segment_pool(h1, state, n_states, counts)).index_select(0, state)
        h2 = torch.relu_(self.pair_hidden(h1).add_(context))
        advantage = self.pair_out(h2).squeeze(-1)  # (sum P,)
        pooled = segment_pool(h2, state, n_states, counts)
        summary = torch.cat([pooled, torch.relu(global_part)], -1)
        value, wait_advantage = self.head(summary).unbind(-1)
        advantage_sum = torch.zeros(n_states, dtype=advantage.dtype).index_add(0, state, advantage)
        base = value - (advantage_sum + wait_advantage) / (counts + 1.0)
        wait_q = base + wait_advantage + self.known_reward[3]
        pair_q = base.index_select(0, state) + advantage + self.known_pair_reward(batch.pairs)
        return wait_q, pair_q


def segment_pool(
    features: torch.Tensor,
    segment: torch.Tensor,
    n_segments: int,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[mean, max]`` of non-negative rows per segment (zeros for an empty segment).

    :param counts: ``(n_segments,)`` rows per segment as floats, when already known.
    """
    width = features.shape[1]
    if counts is None:
        counts = torch.bincount(segment, minlength=n_segments).to(features.dtype)
    total = torch.zeros(n_segments, width, dtype=features.dtype).index_add(0, segment, features)
    maximum = SegmentMax.apply(features, segment, n_segments)
    return torch.cat([total / counts.clamp(min=1.0)[:, None], maximum], dim=-1)


class SegmentMax(torch.autograd.Function):
    """Column-wise maximum of non-negative rows per segment (0 for an empty segment).

    The same values as ``scatter_reduce(..., "amax", include_self=True)`` on zeros; its
    gradient goes to the rows that hold the maximum, shared evenly between tied rows. (The
    generic ``scatter_reduce`` backward also routes a share to the zero start value, and
    costs several passes over every row: most of a gradient step's backward pass.)
    A maximum of 0 comes from ReLU outputs of 0, whose gradient the ReLU drops anyway.
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
        width = rows.shape[1]
        maximum = rows.new_zeros(n_segments, width).scatter_reduce(
            0, segment[:, None].expand(-1, width), rows, "amax", include_self=True
        )
        ctx.save_for_backward(rows, segment, maximum)
        return maximum

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        rows, segment, maximum = ctx.saved_tensors
        # Compared straight into a float mask: a bool mask and its conversion cost ~9x more.
        holds_max = torch.eq(rows, maximum.index_select(0, segment), out=torch.empty_like(rows))
        ties = torch.zeros_like(maximum).index_add_(0, segment, holds_max).clamp_(min=1.0)
        return (grad / ties).index_select(0, segment).mul_(holds_max), None, None


def segment_mean(values: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Mean of ``values`` per segment (0 for an empty segment)."""
    total = torch.zeros(n_segments, dtype=values.dtype).index_add(0, segment, values)
    return total / torch.bincount(segment, minlength=n_segments).clamp(min=1).to(values.dtype)


def segment_max(values: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Maximum of ``values`` per segment (``-inf`` for an empty segment)."""
    empty = torch.full((n_segments,), -torch.inf, dtype=values.dtype)
    return empty.scatter_reduce(0, segment, values, "amax", include_self=True)


class NumpyPairQ:
    """The forward pass of a :class:`PairQNetwork` on one state, compiled, on views of its
    weights (a gradient step on the network is seen at the next call)."""

    def __init__(self, network: PairQNetwork) -> None:
        def view(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().numpy()

        self.driver_in = view(network.driver_in.weight).T
        self.booking_in = view(network.booking_in.weight).T
        self.pair_in = view(network.pair_in.weight).T
        self.global_in = view(network.global_in.weight).T
        self.global_bias = view(network.global_in.bias)
        self.pair_hidden = view(network.pair_hidden.weight).T
        self.pair_hidden_bias = view(network.pair_hidden.bias)
        self.context = view(network.context.weight).T
        self.pair_out = view(network.pair_out.weight).T
        self.pair_out_bias = view(network.pair_out.bias)
        first, _, second = network.head
        self.head_1 = view(first.weight).T
        self.head_1_bias = view(first.bias)
        self.head_2 = view(second.weight).T
        self.head_2_bias = view(second.bias)
        self.known_reward = view(network.known_reward)

    def __call__(self, state: PairState) -> tuple[float, np.ndarray]:
        """``(Q_wait, Q of each candidate pair)``."""
        q_wait, q_pairs = pair_q_kernel(
            np.ascontiguousarray(state.drivers, dtype=np.float32),
            np.ascontiguousarray(state.bookings, dtype=np.float32),
            np.ascontiguousarray(state.pairs, dtype=np.float32),
            np.asarray(state.pair_driver, dtype=np.int64),
            np.asarray(state.pair_slot, dtype=np.int64),
            np.asarray(state.globals, dtype=np.float32),
            self.driver_in,
            self.booking_in,
            self.pair_in,
            self.global_in,
            self.global_bias,
            self.pair_hidden,
            self.pair_hidden_bias,
            self.context,
            self.pair_out,
            self.pair_out_bias,
            self.head_1,
            self.head_1_bias,
            self.head_2,
            self.head_2_bias,
            self.known_reward,
            PAIR_ADDED_KM,
            PAIR_LATE,
            PAIR_KNOCK_ON_LATE,
        )
        return float(q_wait), q_pairs


def choose(q_wait: float, q_pairs: np.ndarray, pair_order: np.ndarray, tolerance: float) -> int:
    """The best action: a candidate index, or ``-1`` for wait.

    Scores within ``tolerance`` of the best count as tied; ties go to the smallest
    ``pair_order`` (booking id, then driver id), and to a pair over waiting, so the choice does
    not depend on the order drivers and bookings are listed in.
    """
    if q_pairs.size == 0:
        return -1
    best_pair = float(q_pairs.max())
    if q_wait > best_pair + tolerance:
        return -1
    tied = np.flatnonzero(q_pairs >= best_pair - tolerance)
    return int(tied[np.argmin(pair_order[tied])])
