"""How ``guided-reopt`` learns: a Fenchel-Young loss through the re-optimiser, on labelled
states of the policy's own days (DAgger).

The solver maximises, over plans ``y``, the day's reward plus ``sum_b prize_b * y_b`` (a free
booking in the plan) plus ``sum_v value(end_v(y))`` (where each driver's plan ends): a linear
function of the learned terms. For such a solver the Fenchel-Young loss of terms ``theta``
against a target plan ``y_bar`` has the gradient ``E[y*(theta + noise * Z)] - y_bar``
(Berthet et al. 2020; Baty et al. 2023 train the EURO-NeurIPS 2022 winner this way). One
update takes one labelled state, perturbs the network's terms once with Gaussian noise
(a one-sample estimate of the expectation; ``noise = 0`` is the structured perceptron),
solves the state's re-plan with them exactly as the policy does, and steps on

    sum_b prize_b * (y*_b - y_bar_b) + sum_v (value(end*_v) - value(end_bar_v))

over the labelled bookings (``later`` ones carry no label)

whose gradient is the Fenchel-Young gradient pushed through the network: a booking the
solver plans and the full-information plan leaves open loses prize, one it leaves out and
the plan serves now gains; the end the solver chose loses value, the plan's end gains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rldispatch.agents.guided_reopt.features import StateFeatures
from rldispatch.agents.guided_reopt.labels import StateLabel
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import objective_terms
from rldispatch.policies.reopt import ReoptPolicy, state_problem
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import DaySimulator


@dataclass
class LabelledState:
    """A visited state, what the network read there, and (once solved) its label.

    ``gate_bookings`` are the planned bookings the commit gate was asked about there, each
    with its planned driver (``gate_drivers``) and its gate row (``gate_rows``)."""

    sim: DaySimulator
    features: StateFeatures
    warm_routes: list[list[int]]
    label: StateLabel | None = None
    gate_bookings: tuple[int, ...] = ()
    gate_drivers: tuple[int, ...] = ()
    gate_rows: np.ndarray | None = None


def gate_step(
    network: TermNetwork,
    optimizer: torch.optim.Optimizer,
    rows: np.ndarray,
    targets: np.ndarray,
    hold_weight: float,
) -> float:
    """One full-batch step of the gate's weighted binary cross-entropy (commit = 1, hold =
    0, a hold label weighing ``hold_weight``); returns the loss before the step."""
    network.train()
    logits = network.gate_logits(torch.from_numpy(np.asarray(rows, dtype=np.float32)))
    target = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    weight = torch.where(target > 0.5, 1.0, float(hold_weight))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
    optimizer.zero_grad()
    if loss.requires_grad:
        loss.backward()
        optimizer.step()
    network.eval()
    return float(loss.detach())


@dataclass(frozen=True)
class UpdateResult:
    loss: float
    disagreement: float
    """Share of the state's decisions (free bookings planned or not, plan ends) where the
    solver and the label differ."""


def solver_plan(
    policy: ReoptPolicy,
    state: LabelledState,
    network: TermNetwork,
    reward: RewardConfig,
    noise: np.ndarray | None = None,
) -> list[list[int]]:
    """The re-plan the policy makes at ``state`` with the network's terms plus ``noise``."""
    sim = state.sim
    problem = state_problem(sim, policy.horizon_min)
    terms = objective_terms(network, state.features, sim.n_drivers, noise)
    model, solution = policy.replan_model(problem, reward, terms, state.warm_routes)
    if solution is None:
        return [[] for _ in range(sim.n_drivers)]
    return model.booking_routes(solution)


def _end_rows(features: StateFeatures, ends: list[int]) -> list[int]:
    position = {b: k for k, b in enumerate(features.end_bookings.tolist())}
    split = features.end_bookings.size
    return [position.get(b, split + v) if b >= 0 else split + v for v, b in enumerate(ends)]


def fenchel_young_step(
    policy: ReoptPolicy,
    network: TermNetwork,
    optimizer: torch.optim.Optimizer,
    state: LabelledState,
    reward: RewardConfig,
    noise: float,
    rng: np.random.Generator,
) -> UpdateResult:
    """One gradient step on one labelled state (see the module docstring)."""
    label = state.label
    assert label is not None
    features = state.features
    sizes = features.booking.shape[0] + features.end.shape[0]
    perturbation = rng.normal(0.0, noise, sizes) if noise > 0 else None
    routes = solver_plan(policy, state, network, reward, perturbation)
    free = features.free.tolist()
    planned = {b for route in routes for b in route}
    target, unlabelled = set(label.now), set(label.later)
    y_star = torch.tensor([float(b in planned) for b in free])
    y_bar = torch.tensor([float(b in target) for b in free])
    labelled = torch.tensor([float(b not in unlabelled) for b in free])
    fixed_last = [route[-1] if route else -1 for route in routes]
    chosen_rows = _end_rows(features, fixed_last)
    target_rows = _end_rows(features, list(label.end_booking))
    network.train()
    prizes = network.prizes(torch.from_numpy(features.booking))
    values = network.values(torch.from_numpy(features.end))
    loss = (prizes * (y_star - y_bar) * labelled).sum() + (
        values[chosen_rows].sum() - values[target_rows].sum()
    )
    optimizer.zero_grad()
    if loss.requires_grad:
        loss.backward()
        optimizer.step()
    network.eval()
    decisions = int(labelled.sum()) + len(chosen_rows)
    differ = float(((y_star != y_bar).float() * labelled).sum()) + sum(
        a != b for a, b in zip(chosen_rows, target_rows, strict=True)
    )
    return UpdateResult(float(loss.detach()), differ / max(decisions, 1))


def disagreement(
    policy: ReoptPolicy, network: TermNetwork, states: list[LabelledState], reward: RewardConfig
) -> float:
    """Mean share of decisions where the solver with the network's terms and the labels
    differ (no noise, no update)."""
    shares = []
    for state in states:
        label = state.label
        assert label is not None
        routes = solver_plan(policy, state, network, reward)
        planned = {b for route in routes for b in route}
        free = state.features.free.tolist()
        target, unlabelled = set(label.now), set(label.later)
        free = [b for b in free if b not in unlabelled]
        chosen = _end_rows(state.features, [route[-1] if route else -1 for route in routes])
        wanted = _end_rows(state.features, list(label.end_booking))
        differ = sum((b in planned) != (b in target) for b in free) + sum(
            a != b for a, b in zip(chosen, wanted, strict=True)
        )
        shares.append(differ / max(len(free) + len(chosen), 1))
    return float(np.mean(shares)) if shares else 0.0
