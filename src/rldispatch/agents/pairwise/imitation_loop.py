"""DAgger: the pairwise network learns to choose as an expert would, in the states it visits.

The expert is the day's hindsight plan (``search="hindsight"`` or ``"local"``) or the
lookahead expert (``search="lookahead"``, :class:`rldispatch.agents.pairwise.lookahead.
LookaheadExpert`): in each labelled state it plays the network's best pairs on in copies of
the day that know only the bookings known then, with the network as it was when the round
began, and picks the pair that ends best (expert iteration: each round's expert builds on
the network the last round trained). It needs no plan, so the rest of this paragraph is
about plans.

For each training day the hindsight solver (:func:`rldispatch.policies.hindsight.solve_scenario`,
every booking known from the start) plans the day once, starting from the routes the network
plays that day, so the plan is never worse than them (:class:`HindsightPlans` keeps it). Then
for ``rounds`` rounds every day is played by a mixture: at each decision the plan's choice
(:func:`rldispatch.agents.pairwise.imitation.plan_label`) with probability ``beta`` (which
decays by ``beta_decay`` per round), else the network's greedy choice. Every state visited
gets the plan's label, the labelled states of all rounds are kept (DAgger's aggregation) and
after each round the network takes ``epochs`` passes over them with the ranking loss
(:func:`rldispatch.agents.pairwise.imitation.imitation_loss`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rldispatch.agents.pairwise.agent import PairDQNAgent, greedy_candidate
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState
from rldispatch.agents.pairwise.imitation import (
    WAIT,
    ImitationData,
    driver_loss,
    imitation_loss,
    plan_label,
    planned_pairs,
)
from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.network import NumpyPairQ, PairBatch
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json, read_json
from rldispatch.policies.hindsight import solve_scenario
from rldispatch.policies.plan_actions import DayPlan
from rldispatch.policies.ride_model import RideModel, RideProblem, replay, replay_reward
from rldispatch.policies.routing import search_parameters
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import DaySimulator

TARGETS = ("driver", "action")
PLAN_SEARCHES = ("hindsight", "local")
"""The experts that are a day's plan (:class:`HindsightPlans`)."""
SEARCHES = (*PLAN_SEARCHES, "lookahead")

Labeller = Callable[[DispatchEnv, PairState], tuple[int | None, np.ndarray]]
"""The expert's label of a state (a candidate index, :data:`WAIT`, or None for no label)
and its preferred pairs (the ``"driver"`` target's labels)."""


@dataclass(frozen=True)
class ImitationSettings:
    """How the network imitates the hindsight plans.

    :param rounds: DAgger rounds (each plays every day once).
    :param time_limit_s: the hindsight solver's time per day.
    :param beta: probability of acting on the plan's label in the first round.
    :param beta_decay: ``beta`` is multiplied by this after each round.
    :param epochs: passes over the aggregated states after each round.
    :param batch_size: states per gradient step.
    :param learning_rate: Adam step size.
    :param temperature: the scores are divided by this in the softmax.
    :param target: ``"driver"``: each visible booking's candidates ranked toward its
        planned driver (the order of assignments and waiting stay the network's own);
        ``"action"``: the state's choice ranked toward the plan's action (which booking,
        which driver, or waiting).
    :param search: the expert: a day's plan (``"hindsight"``, ``"local"``, see
        :class:`HindsightPlans`) or ``"lookahead"`` (no plan; see the module docstring).
    :param candidates: pairs the lookahead expert plays on per labelled state.
    :param label_every: label one decision in this many (the others are played, not
        labelled); a lookahead label costs a rollout per candidate.
    :param anchor: weight of the squared learned part of the scores (against waiting's) in
        the loss: 0 lets the scores drift as far as the labels pull them.
    """

    rounds: int = 3
    time_limit_s: float = 3.0
    beta: float = 0.3
    beta_decay: float = 0.5
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-3
    temperature: float = 1.0
    target: str = "driver"
    search: str = "hindsight"
    anchor: float = 0.0
    candidates: int = 3
    label_every: int = 1

    def __post_init__(self) -> None:
        checks = {
            "rounds": self.rounds >= 1,
            "time_limit_s": self.time_limit_s > 0,
            "beta": 0.0 <= self.beta <= 1.0,
            "beta_decay": 0.0 <= self.beta_decay <= 1.0,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "temperature": self.temperature > 0,
            "target": self.target in TARGETS,
            "search": self.search in SEARCHES,
            "anchor": self.anchor >= 0,
            "candidates": self.candidates >= 1,
            "label_every": self.label_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"imitation.{name}: {getattr(self, name)!r} is out of range")


@dataclass(frozen=True)
class RoundStats:
    """One DAgger round: ``beta``, labelled states so far, the mean loss of its last epoch,
    the share of those states where the network's best score is the label, and the mean
    env reward of the days it played."""

    round: int
    beta: float
    states: int
    loss: float
    agreement: float
    played_reward: float


def local_plan(
    day: Scenario, routes: Sequence[Sequence[int]], time_limit_s: float, reward: RewardConfig
) -> DayPlan:
    """The played ``routes`` improved by guided local search with every booking known
    (:class:`RideModel`, the day's exact reward) for ``time_limit_s``: a plan that stays
    close to what was played and differs where hindsight says it pays (the played routes
    when the search finds nothing better)."""
    sim = DaySimulator(day)
    problem = RideProblem.whole_day(sim)
    model = RideModel(problem, reward)
    candidates = [[list(route) for route in routes]]
    start = model.initial_assignment(candidates[0])
    if start is not None:
        params = search_parameters(time_limit_s, "PARALLEL_CHEAPEST_INSERTION")
        solution = model.routing.SolveFromAssignmentWithParameters(start, params)
        if solution is not None:
            candidates.append(model.booking_routes(solution))
    best, best_reward = None, -np.inf
    for candidate in candidates:
        played = replay(problem, candidate)
        value = replay_reward(problem, played, reward)
        if not played.problems and value > best_reward:
            best, best_reward = (candidate, played), value
    if best is None:
        raise RuntimeError(f"local plan: the played routes of {day.name!r} break a rule")
    chosen, played = best
    driver_of = {b: d for d, route in enumerate(chosen) for b in route}
    return DayPlan(driver_of, {b: float(played.pickup_min[b]) for b in driver_of})


class HindsightPlans:
    """The hindsight plan of each day, solved once (kept in memory, and as JSON files in
    ``folder`` when given, one per day, search and time limit).

    :param search: ``"hindsight"``: :func:`solve_scenario` (its own search, started from the
        played routes too); ``"local"``: :func:`local_plan` from the played routes.
    :param reward: the weights the plans are solved under (default: the defaults).
    """

    def __init__(
        self,
        time_limit_s: float,
        folder: str | Path | None = None,
        search: str = "hindsight",
        reward: RewardConfig | None = None,
    ) -> None:
        if search not in PLAN_SEARCHES:
            raise ValueError(f"imitation.search: {search!r} is not a plan {PLAN_SEARCHES}")
        self.time_limit_s = float(time_limit_s)
        self.folder = Path(folder) if folder is not None else None
        self.search = search
        self.reward = reward or RewardConfig()
        self._plans: dict[str, DayPlan] = {}

    def _path(self, day: Scenario) -> Path | None:
        if self.folder is None:
            return None
        suffix = "" if self.search == "hindsight" else f"-{self.search}"
        if self.reward != RewardConfig():  # plans under other weights are other plans
            weights = json.dumps(asdict(self.reward), sort_keys=True).encode()
            suffix += f"-reward-{hashlib.sha256(weights).hexdigest()[:10]}"
        return self.folder / f"{day.name}-{self.time_limit_s:g}s{suffix}.json"

    def get(self, day: Scenario, played_routes: Sequence[Sequence[int]] | None) -> DayPlan:
        """The plan of ``day``; solved (from ``played_routes``) only the first time."""
        if day.name in self._plans:
            return self._plans[day.name]
        path = self._path(day)
        if path is not None and path.exists():
            stored = read_json(path)
            plan = DayPlan(
                {int(k): int(v) for k, v in stored["driver_of"].items()},
                {int(k): float(v) for k, v in stored["pickup_of"].items()},
            )
        elif self.search == "local":
            if played_routes is None:
                raise ValueError("local plan: needs the played routes")
            plan = local_plan(day, played_routes, self.time_limit_s, self.reward)
        else:
            result = solve_scenario(
                day, self.time_limit_s, reward=self.reward, initial_routes=played_routes
            )
            if result.metrics is None:
                raise RuntimeError(f"hindsight: no plan found for day {day.name!r}")
            plan = DayPlan.from_hindsight(result, [b.id for b in day.bookings])
        if path is not None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                path,
                {
                    "driver_of": {str(k): v for k, v in plan.driver_of.items()},
                    "pickup_of": {str(k): v for k, v in plan.pickup_of.items()},
                },
            )
        self._plans[day.name] = plan
        return plan

    def __contains__(self, day: Scenario) -> bool:
        path = self._path(day)
        return day.name in self._plans or (path is not None and path.exists())


def play_greedy(
    agent: PairDQNAgent, features: FeatureBuilder, env: DispatchEnv, day: Scenario
) -> list[list[int]]:
    """Play ``day`` with the network's greedy choice; each driver's served bookings."""
    env.reset(options={"scenario": day})
    terminated = env.sim.done
    while not terminated:
        state = features.build(env)
        _, _, terminated, _, _ = env.step(state.action(greedy_candidate(agent.q_function, state)))
    return env.sim.served_routes()


def expert_choice(
    state: PairState, student: int, label: int | None, pairs: np.ndarray, target: str
) -> int:
    """The expert's candidate in a mixture step. ``"action"``: the plan's label (the
    student's choice when there is none). ``"driver"``: the student's booking given to its
    planned driver (the student's choice when that booking has no planned candidate)."""
    if target == "action":
        return student if label is None else label
    if student < 0:
        return student
    same_booking = pairs[state.pair_slot[pairs] == state.pair_slot[student]]
    return int(same_booking[0]) if same_booking.size else student


def plan_labeller(plan: DayPlan) -> Labeller:
    """Labels from a day's plan: :func:`plan_label` and :func:`planned_pairs`."""

    def label(env: DispatchEnv, state: PairState) -> tuple[int | None, np.ndarray]:
        return plan_label(env, state, plan), planned_pairs(env, state, plan)

    return label


def lookahead_labeller(expert: LookaheadExpert) -> Labeller:
    """Labels from the lookahead expert: its choice, which is also its preferred pair."""

    def label(env: DispatchEnv, state: PairState) -> tuple[int | None, np.ndarray]:
        choice = expert.choose(env, state)
        return choice, np.array([choice] if choice != WAIT else [], dtype=np.int64)

    return label


def play_and_label(
    agent: PairDQNAgent,
    features: FeatureBuilder,
    env: DispatchEnv,
    day: Scenario,
    labeller: Labeller,
    beta: float,
    rng: np.random.Generator,
    data: ImitationData,
    target: str = "driver",
    label_every: int = 1,
) -> float:
    """Play ``day`` with the mixture (the expert's label with probability ``beta``, else the
    network's greedy choice), adding every ``label_every``-th state the expert labels to
    ``data``; the day's reward."""
    env.reset(options={"scenario": day})
    terminated = env.sim.done
    total = 0.0
    decision = 0
    while not terminated:
        state = features.build(env)
        candidate = greedy_candidate(agent.q_function, state)
        if decision % label_every == 0:
            label, pairs = labeller(env, state)
            if label is not None or pairs.size:
                data.add(state, WAIT if label is None else label, pairs)
            if rng.random() < beta:
                candidate = expert_choice(state, candidate, label, pairs, target)
        decision += 1
        _, reward, terminated, _, _ = env.step(state.action(candidate))
        total += reward
    return total


def fit(
    agent: PairDQNAgent,
    data: ImitationData,
    settings: ImitationSettings,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """``epochs`` passes over ``data`` in shuffled batches; the last epoch's mean loss and
    agreement."""
    network = agent.q_network
    losses, agreements = [], []
    for _ in range(settings.epochs):
        losses, agreements = [], []
        order = rng.permutation(len(data))
        for start in range(0, len(order), settings.batch_size):
            chosen = order[start : start + settings.batch_size]
            if settings.target == "driver":
                chosen = [k for k in chosen if data.pairs[k].size]
                if not chosen:
                    continue
            states = [data.states[k] for k in chosen]
            batch = PairBatch.from_states(states)
            if settings.target == "driver":
                offsets = np.cumsum([0] + [s.n_pairs for s in states])
                planned = np.concatenate([data.pairs[k] + offsets[i] for i, k in enumerate(chosen)])
                loss, agreement = driver_loss(
                    network, batch, torch.from_numpy(planned), settings.temperature, settings.anchor
                )
            else:
                labels = torch.tensor([data.labels[k] for k in chosen], dtype=torch.long)
                loss, agreement = imitation_loss(
                    network, batch, labels, settings.temperature, settings.anchor
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), agent.config.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            agreements.append(agreement.item())
    return float(np.mean(losses)), float(np.mean(agreements))


def imitate(
    agent: PairDQNAgent,
    features: FeatureBuilder,
    env: DispatchEnv,
    days: Sequence[Scenario],
    settings: ImitationSettings,
    seed: int,
    plans: HindsightPlans | None = None,
) -> list[RoundStats]:
    """DAgger on ``days`` with the expert of ``settings.search`` (see the module docstring,
    ``plans`` keeps the days' plans for the plan experts). Trains
    ``agent.q_network`` and copies it into the target network at the end."""
    lookahead = settings.search == "lookahead"
    if not lookahead:
        plans = plans or HindsightPlans(
            settings.time_limit_s, search=settings.search, reward=env.config.reward
        )
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(agent.q_network.parameters(), lr=settings.learning_rate)
    data = ImitationData()
    stats = []
    beta = settings.beta
    for round_index in range(settings.rounds):
        if lookahead:
            network = copy.deepcopy(agent.q_network)
            expert = LookaheadExpert(
                NumpyPairQ(network), settings.candidates, features.candidates_per_booking
            )
        rewards = []
        for day in days:
            if lookahead:
                labeller = lookahead_labeller(expert)
            else:
                routes = None if day in plans else play_greedy(agent, features, env, day)
                labeller = plan_labeller(plans.get(day, routes))
            rewards.append(
                play_and_label(
                    agent,
                    features,
                    env,
                    day,
                    labeller,
                    beta,
                    rng,
                    data,
                    settings.target,
                    settings.label_every,
                )
            )
        loss, agreement = fit(agent, data, settings, optimizer, rng) if len(data) else (0, 0)
        stats.append(
            RoundStats(round_index, beta, len(data), loss, agreement, float(np.mean(rewards)))
        )
        beta *= settings.beta_decay
    agent.target_network.load_state_dict(agent.q_network.state_dict())
    return stats
