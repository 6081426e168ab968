"""Learning the pairwise scores from a day's hindsight plan: labels and the ranking loss.

A decision state is labelled with what the plan does through the env's own actions
(:func:`rldispatch.policies.plan_actions.planned_choice`), restricted to the state's
candidate pairs: of the visible bookings whose planned driver is one of their candidates,
the one with the earliest planned pickup goes to that driver. When the plan serves none of
the visible bookings that have candidates, the label is to wait; when it would give one of
them to a driver that is not a candidate (the state has left the plan), the state has no
label.

The loss is the cross-entropy of the softmax over a state's scores (waiting and every
candidate pair, ``Q / temperature``) toward the label. The scores keep their known reward,
so the network learns only what the plan adds to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rldispatch.agents.pairwise.features import PairState
from rldispatch.agents.pairwise.network import PairBatch, PairQNetwork, segment_max
from rldispatch.env import DispatchEnv
from rldispatch.policies.plan_actions import DayPlan, planned_choice

WAIT = -1
"""The label of waiting (a candidate index otherwise)."""


def plan_label(env: DispatchEnv, state: PairState, plan: DayPlan) -> int | None:
    """The plan's choice in the env's current state: a candidate index of ``state``,
    :data:`WAIT`, or None when the plan gives a visible booking to a non-candidate driver."""
    visible = env.visible.tolist()
    candidates = {
        (int(d), int(s)): p
        for p, (d, s) in enumerate(zip(state.pair_driver, state.pair_slot, strict=True))
    }
    slots_with_candidates = {slot for _, slot in candidates}
    driver_of = {}
    for slot in slots_with_candidates:
        booking = visible[slot]
        driver = plan.driver_of.get(booking)
        if driver is None:
            continue
        if (driver, slot) not in candidates:
            return None
        driver_of[booking] = driver
    choice = planned_choice(env, driver_of, plan.pickup_of)
    return WAIT if choice is None else candidates[choice]


def planned_pairs(env: DispatchEnv, state: PairState, plan: DayPlan) -> np.ndarray:
    """The candidates of ``state`` that give a visible booking to its planned driver (at
    most one per booking; none for a booking the plan drops or gives to a non-candidate)."""
    visible = env.visible
    planned = np.array(
        [plan.driver_of.get(int(visible[slot]), -1) for slot in state.pair_slot.tolist()],
        dtype=np.int64,
    )
    return np.flatnonzero(planned == state.pair_driver)


@dataclass
class ImitationData:
    """Labelled states, aggregated over the rounds of imitation (DAgger): each state's plan
    label (:func:`plan_label`, :data:`WAIT` or a candidate) and its planned pairs
    (:func:`planned_pairs`)."""

    states: list[PairState] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    pairs: list[np.ndarray] = field(default_factory=list)

    def add(self, state: PairState, label: int, pairs: np.ndarray) -> None:
        self.states.append(state)
        self.labels.append(int(label))
        self.pairs.append(np.asarray(pairs, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)


def learned_gap(
    network: PairQNetwork, batch: PairBatch, wait_q: torch.Tensor, pair_q: torch.Tensor
) -> torch.Tensor:
    """Per pair, the learned part of its score minus the learned part of waiting's: zero in
    the untrained network, whose choices are its known rewards'."""
    learned_pair = pair_q - network.known_pair_reward(batch.pairs)
    learned_wait = wait_q - network.known_reward[3]
    return learned_pair - learned_wait.index_select(0, batch.pair_state)


def imitation_loss(
    network: PairQNetwork,
    batch: PairBatch,
    labels: torch.Tensor,
    temperature: float,
    anchor: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean cross-entropy + anchor * mean squared learned gap, share of states whose best
    score is the label)``; the anchor (:func:`learned_gap`) keeps the scores near their known
    rewards where the labels do not say otherwise.

    :param labels: ``(B,)`` a candidate index within each state, or :data:`WAIT`.
    """
    wait_q, pair_q = network(batch)
    state = batch.pair_state
    n_states = batch.n_states
    wait_logit = wait_q / temperature
    pair_logit = pair_q / temperature
    top = torch.maximum(wait_logit, segment_max(pair_logit, state, n_states)).detach()
    total = torch.exp(wait_logit - top).index_add(
        0, state, torch.exp(pair_logit - top.index_select(0, state))
    )
    log_partition = top + torch.log(total)
    offsets = batch.pair_offsets
    pair_index = (offsets + labels.clamp(min=0)).clamp(max=max(pair_q.shape[0] - 1, 0))
    label_logit = torch.where(
        labels < 0, wait_logit, pair_logit[pair_index] if pair_q.numel() else wait_logit
    )
    loss = (log_partition - label_logit).mean()
    if anchor and pair_q.numel():
        loss = loss + anchor * learned_gap(network, batch, wait_q, pair_q).square().mean()
    with torch.no_grad():
        best_pair = segment_max(pair_q, state, n_states)
        label_q = torch.where(labels < 0, wait_q, pair_q[pair_index] if pair_q.numel() else wait_q)
        agrees = label_q >= torch.maximum(wait_q, best_pair) - 1e-6
    return loss, agrees.float().mean()


def driver_loss(
    network: PairQNetwork,
    batch: PairBatch,
    planned: torch.Tensor,
    temperature: float,
    anchor: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean cross-entropy + anchor * mean squared learned gap, share of labelled bookings
    whose best candidate is the planned one)`` of the softmax over each booking's candidates
    toward its planned driver. The softmax does not see waiting; the anchor
    (:func:`learned_gap`) keeps the pairs' scores against waiting's where they were.

    :param planned: packed indices (into the batch's pairs) of the planned pairs.
    """
    wait_q, pair_q = network(batch)
    booking = batch.pair_booking
    n_bookings = int(batch.bookings.shape[0])
    logit = pair_q / temperature
    top = segment_max(logit, booking, n_bookings).detach()
    total = torch.zeros(n_bookings, dtype=logit.dtype).index_add(
        0, booking, torch.exp(logit - top.index_select(0, booking))
    )
    log_partition = top + torch.log(total.clamp(min=1e-30))
    labelled = booking.index_select(0, planned)
    loss = (log_partition.index_select(0, labelled) - logit.index_select(0, planned)).mean()
    if anchor:
        loss = loss + anchor * learned_gap(network, batch, wait_q, pair_q).square().mean()
    with torch.no_grad():
        best = segment_max(pair_q, booking, n_bookings).index_select(0, labelled)
        agrees = pair_q.index_select(0, planned) >= best - 1e-6
    return loss, agrees.float().mean()
