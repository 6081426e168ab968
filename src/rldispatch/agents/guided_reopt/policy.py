"""``guided-reopt``'s policy: ``reopt`` with learned terms in each re-plan's objective.

At every re-plan the network reads the state (:mod:`.features`) and gives each free open
booking a prize (added to the price of leaving it out of the plan: a low prize lets the
solver leave the booking open for a later re-plan) and each place a driver's plan may end a
value (added to the reward of ending there). Acting on the plan, its commit gate
(:mod:`.gate`) holds back the planned bookings it scores below 0 (unless their planned
pickup is at most ``floor_min`` minutes ahead): they stay open for the next re-plan. Where
``reopt`` would wait while an assignment is possible (every visible booking it could commit
is one its plan leaves out), the ``take`` term scores those bookings and takes the best one when
its score is above 0 (learned from the reward, :mod:`.es_learning`): to its cheapest driver by
the env's insertion cost (``take_driver="insertion"``), or to the driver a re-plan with the
booking forced in gives it (``take_driver="replan"``; that plan, in which committed bookings
keep the env's windows but may turn late, becomes the policy's plan). With
``take_driver="known-reward"`` the term scores every visible booking a driver may take (those
the plan holds back too) and, when the best score is above 0, the action is the one whose
reward known at the decision is best (km, lateness it causes, knock-on lateness:
:func:`~rldispatch.agents.pairwise.policy.known_reward_policy`, the pairwise network's
untrained start), booking and driver both; with ``take_driver="lookahead"`` that known-reward
network's :data:`TAKE_LOOKAHEAD` best assignments are each played on in a copy of the day on the
bookings known now (:class:`~rldispatch.agents.pairwise.lookahead.LookaheadExpert`) and the one
whose copy ends with the most reward is taken.
Everything else is ``reopt``'s: the same problem, locked commitments, warm start, search
budget and acting on the plan. With a zero network the model is ``reopt``'s to the last
integer and the gate commits every planned booking, so it takes ``reopt``'s decisions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rldispatch.agents.guided_reopt.features import StateFeatures, build_features
from rldispatch.agents.guided_reopt.gate import (
    DEFAULT_FLOOR_MIN,
    gate_rows,
    linear_gate_rows,
    plan_rank,
)
from rldispatch.agents.guided_reopt.network import TAKE_TERM, TermNetwork
from rldispatch.agents.kinds import CandidateScore, LearnedPolicy
from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import PairwisePolicy, known_reward_policy
from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action
from rldispatch.policies.reopt import DEFAULT_HORIZON_MIN, ReoptPolicy
from rldispatch.policies.ride_model import ObjectiveTerms, RideProblem
from rldispatch.rewards import RewardConfig
from rldispatch.sim.simulator import DaySimulator
from rldispatch.sim.stop_simulator import StopDaySimulator

TAKE_DRIVERS = ("insertion", "replan", "known-reward", "lookahead")
"""How a take is chosen: the best-scored booking the plan leaves out to the env's cheapest
insertion, or to the driver of a re-plan with the booking forced in; the assignment with the
best known reward; or the best of the known reward's best assignments played on."""
TAKE_LOOKAHEAD = 3
"""Assignments a ``lookahead`` take plays on (the known reward's best first)."""
FORCED_PRIZE = 10_000.0
"""Reward units added to the price of leaving the taken booking out of its forced re-plan: far
above any plan's cost, so the re-plan serves it whenever its model can."""


def objective_terms(
    network: TermNetwork, features: StateFeatures, n_drivers: int, noise: np.ndarray | None = None
) -> ObjectiveTerms:
    """The network's terms for one re-plan; ``noise`` (prizes then end values) is added."""
    prizes, values = network.evaluate(features.booking, features.end)
    if noise is not None:
        prizes = prizes + noise[: prizes.size]
        values = values + noise[prizes.size :]
    split = features.end_bookings.size
    return ObjectiveTerms(
        prize=dict(zip(features.free.tolist(), prizes.tolist(), strict=True)),
        end_value=dict(zip(features.end_bookings.tolist(), values[:split].tolist(), strict=True)),
        start_value=values[split : split + n_drivers],
    )


class GuidedReoptPolicy(ReoptPolicy, LearnedPolicy):
    """Rolling-horizon re-optimisation guided by a :class:`TermNetwork` (module docstring).

    :param network: the learned terms (eval mode; never changed here).
    :param floor_min: a planned booking whose pickup is at most this many minutes ahead is
        committed whatever the gate says.
    :param take_driver: who gets a booking the ``take`` term takes: ``"insertion"``, the
        driver of its cheapest insertion; ``"replan"``, the driver a re-plan with the booking
        forced in gives it (cheapest insertion when that re-plan cannot serve it);
        ``"known-reward"``, the assignment with the best known reward among every visible
        booking (the term scores them all); ``"lookahead"``, the best of the
        :data:`TAKE_LOOKAHEAD` assignments of best known reward, each played on in a copy of
        the day on the bookings known now.
    """

    name = "guided-reopt"

    def __init__(
        self,
        network: TermNetwork,
        name: str = "guided-reopt",
        horizon_min: float = DEFAULT_HORIZON_MIN,
        solution_limit: int = 0,
        time_limit_s: float | None = None,
        floor_min: float = DEFAULT_FLOOR_MIN,
        take_driver: str = "insertion",
    ) -> None:
        super().__init__(
            horizon_min=horizon_min, solution_limit=solution_limit, time_limit_s=time_limit_s
        )
        if take_driver not in TAKE_DRIVERS:
            raise ValueError(f"guided-reopt: take_driver must be one of {TAKE_DRIVERS}")
        self.network = network
        self.name = name
        self.floor_min = float(floor_min)
        self.take_driver = take_driver
        self._known_reward: tuple[RewardConfig, PairwisePolicy] | None = None
        self._take_expert: LookaheadExpert | None = None
        self.held = 0
        self.taken = 0
        self.forced_replans = 0
        self.forced_misses = 0

    def features(self, sim: DaySimulator, problem: RideProblem) -> StateFeatures:
        return build_features(sim, problem)

    def objective_terms(self, env: DispatchEnv, problem: RideProblem) -> ObjectiveTerms | None:
        if not self.network.objective_terms:
            return None
        return objective_terms(self.network, self.features(env.sim, problem), env.sim.n_drivers)

    def act(self, env: DispatchEnv) -> int:
        """``reopt``'s action; with the ``take`` term, where it would wait while an assignment
        is possible, the best-scored visible booking its plan leaves out is taken when that
        score is above 0 (its driver as ``take_driver`` says)."""
        action = super().act(env)
        if action != 0 or TAKE_TERM not in self.network.terms:
            return action
        return self._take(env)

    def _take(self, env: DispatchEnv) -> int:
        table = env.table
        sim = env.sim
        if table is None or not self._solved or isinstance(sim, StopDaySimulator):
            return 0
        grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
        by_known_reward = self.take_driver in ("known-reward", "lookahead")
        takeable = [
            (slot, booking)
            for slot, booking in enumerate(env.visible.tolist())
            if (by_known_reward or (booking in self._known and booking not in self._driver_of))
            and grid[: sim.n_drivers, slot].any()
        ]
        if not takeable:
            return 0
        features = self.features(sim, self.problem(sim))
        row_of = {booking: k for k, booking in enumerate(features.free.tolist())}
        candidates = [(slot, booking) for slot, booking in takeable if booking in row_of]
        if not candidates:
            return 0
        rows = features.booking[[row_of[booking] for _, booking in candidates]]
        scores = self.network.take_scores(rows)
        best = int(np.argmax(scores))
        if not scores[best] > 0.0:
            return 0
        if by_known_reward:
            action = self._known_reward_action(env)
            self.taken += action != 0
            return action
        slot, booking = candidates[best]
        self.taken += 1
        if self.take_driver == "replan":
            driver = self._forced_driver(env, booking)
            if driver is not None and grid[driver, slot]:
                return assignment_action(env, driver, slot)
            self.forced_misses += 1
        column = np.where(grid[: sim.n_drivers, slot], table.cost[: sim.n_drivers, slot], np.inf)
        return assignment_action(env, int(np.argmin(column)), slot)

    def known_reward(self, reward: RewardConfig) -> PairwisePolicy:
        """The known-reward policy of ``reward``'s weights (made once per weights)."""
        if self._known_reward is None or self._known_reward[0] != reward:
            self._known_reward = (reward, known_reward_policy(reward))
        return self._known_reward[1]

    def _known_reward_action(self, env: DispatchEnv) -> int:
        """The known-reward policy's action; with ``take_driver="lookahead"`` the best of its
        :data:`TAKE_LOOKAHEAD` best assignments, each played on in a copy of the day."""
        policy = self.known_reward(env.config.reward)
        if self.take_driver != "lookahead":
            return policy.act(env)
        expert = self._take_expert
        if expert is None or expert.q_function is not policy.q_function:
            expert = self._take_expert = LookaheadExpert(
                policy.q_function, TAKE_LOOKAHEAD, policy.features.candidates_per_booking
            )
        state = policy.features.build(env)
        return state.action(expert.choose(env, state))

    def _forced_driver(self, env: DispatchEnv, booking: int) -> int | None:
        """Re-plan with ``booking`` forced in (:data:`FORCED_PRIZE` on leaving it out), keep
        that plan as the policy's, and return the driver it gives the booking (None when the
        re-plan leaves it out all the same or finds no plan).

        The forced re-plan holds committed bookings to the env's rule (pickup within the
        window), not to ``reopt``'s stricter one (a committed booking on time stays on time):
        the bookings ``take`` scores are those the stricter rule leaves out, so under it the
        re-plan could not serve them. Its model does not charge a committed booking made late.
        """
        sim = env.sim
        problem = replace(self.problem(sim), keep_on_time=frozenset())
        terms = self.objective_terms(env, problem) or ObjectiveTerms()
        prize = dict(terms.prize)
        prize[booking] = prize.get(booking, 0.0) + FORCED_PRIZE
        warm_routes = self._warm_routes(sim, problem)
        model, solution = self.replan_model(
            problem, env.config.reward, replace(terms, prize=prize), warm_routes
        )
        self.forced_replans += 1
        if solution is None:
            return None
        self._keep_solution(sim, problem, model, solution)
        return self._driver_of.get(booking)

    def committable(self, env: DispatchEnv) -> dict[int, int]:
        """The plan's visible bookings the gate lets commit now (every one without a gate)."""
        driver_of = super().committable(env)
        if "gate" not in self.network.terms:
            return driver_of
        sim = env.sim
        floor = sim.now_min + self.floor_min
        asked = [b for b in env.visible.tolist() if b in driver_of and self._pickup_of[b] > floor]
        if not asked:
            return driver_of
        rank = plan_rank(sim, self._routes)
        if self.network.linear_gate:
            rows = linear_gate_rows(sim, asked, driver_of, self._pickup_of, rank, self._left_out)
        else:
            rows = gate_rows(sim, asked, driver_of, self._pickup_of, rank)
        scores = self.network.gate_scores(rows)
        held = {b for b, score in zip(asked, scores, strict=True) if score < 0.0}
        self.held += len(held)
        return {b: d for b, d in driver_of.items() if b not in held}

    def candidate_scores(self, env: DispatchEnv, slot: int) -> list[CandidateScore]:
        """The plan's driver for the booking first (its score the booking's prize), then the
        other drivers that can take it by the env's insertion cost."""
        table = env.table
        if table is None or slot >= len(env.visible):
            return []
        sim = env.sim
        booking = int(env.visible[slot])
        if sim is not self._sim:
            self._new_day(sim)
        if self._plan_is_stale(sim):
            self._replan(env)
        grid = env.action_masks()[1:].reshape(env.config.max_drivers, env.config.visible_slots)
        planned = self._driver_of.get(booking)
        scores = []
        for driver in range(sim.n_drivers):
            if not grid[driver, slot]:
                continue
            cost = float(table.cost[driver, slot])
            score = 1.0 if driver == planned else -cost
            scores.append(CandidateScore(driver, score, {"insertion_cost": cost}))
        return sorted(scores, key=lambda item: -item.score)
