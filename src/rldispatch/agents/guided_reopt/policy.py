"""``guided-reopt``'s policy: ``reopt`` with learned terms in each re-plan's objective.

At every re-plan the network reads the state (:mod:`.features`) and gives each free open
booking a prize (added to the price of leaving it out of the plan: a low prize lets the
solver leave the booking open for a later re-plan) and each place a driver's plan may end a
value (added to the reward of ending there). Acting on the plan, its commit gate
(:mod:`.gate`) holds back the planned bookings it scores below 0 (unless their planned
pickup is at most ``floor_min`` minutes ahead): they stay open for the next re-plan.
Everything else is ``reopt``'s: the same problem, locked commitments, warm start, search
budget and acting on the plan. With a zero network the model is ``reopt``'s to the last
integer and the gate commits every planned booking, so it takes ``reopt``'s decisions.
"""

from __future__ import annotations

import numpy as np

from rldispatch.agents.guided_reopt.features import StateFeatures, build_features
from rldispatch.agents.guided_reopt.gate import (
    DEFAULT_FLOOR_MIN,
    gate_rows,
    linear_gate_rows,
    plan_rank,
)
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.kinds import CandidateScore, LearnedPolicy
from rldispatch.env import DispatchEnv
from rldispatch.policies.reopt import DEFAULT_HORIZON_MIN, ReoptPolicy
from rldispatch.policies.ride_model import ObjectiveTerms, RideProblem
from rldispatch.sim.simulator import DaySimulator


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
    ) -> None:
        super().__init__(
            horizon_min=horizon_min, solution_limit=solution_limit, time_limit_s=time_limit_s
        )
        self.network = network
        self.name = name
        self.floor_min = float(floor_min)
        self.held = 0

    def features(self, sim: DaySimulator, problem: RideProblem) -> StateFeatures:
        return build_features(sim, problem)

    def objective_terms(self, env: DispatchEnv, problem: RideProblem) -> ObjectiveTerms | None:
        if not self.network.objective_terms:
            return None
        return objective_terms(self.network, self.features(env.sim, problem), env.sim.n_drivers)

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
