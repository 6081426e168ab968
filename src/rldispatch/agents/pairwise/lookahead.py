"""A per-state expert for the pairwise network: look ahead on the bookings known now.

In a decision state the expert takes the network's ``candidates`` best pairs. For each it
copies the simulator, forgets the bookings not yet released (the copy knows only what a
dispatcher knows at that moment), takes the pair and plays the copy on with the network's
own greedy choices until every known booking is decided and every plan driven. The pair
whose copy ends with the most reward (the env's own reward) is the expert's choice; ties go
to the network's order. When the network would wait, or has a single candidate, the
expert agrees with it.

The expert sees no booking the network does not see, so its choice is a function of the
state: what the network is trained to imitate (:mod:`rldispatch.agents.pairwise.imitation_loop`,
``search="lookahead"``) is a better online policy, not an oracle's. Each look costs a
rollout per candidate (tenths of a second on a day of 20 drivers). To serve it (``serve
--lookahead N``), a time budget per decision bounds that: it is checked at every step of a
rollout, and once it is used the rollout in progress is abandoned and the candidates not yet
looked at are passed over, so the choice is the best of those looked at to their end (the
network's own choice when none was). A caller may also stop every look at once
(:attr:`LookaheadExpert.should_stop`: a request's budget spent, its client gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rldispatch.agents.pairwise.agent import TIE_TOLERANCE, greedy_candidate
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState
from rldispatch.agents.pairwise.imitation import WAIT
from rldispatch.agents.pairwise.network import NumpyPairQ, choose
from rldispatch.env import DispatchEnv


def check_look(candidates: int, time_budget_s: float | None) -> None:
    """Refuse a look ahead of fewer than one candidate or a budget that is not positive."""
    if candidates < 1:
        raise ValueError(f"candidates: must be at least 1, got {candidates!r}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s: must be positive or None, got {time_budget_s!r}")


def look_stopped(deadline: float | None, should_stop: Callable[[], bool] | None) -> bool:
    """Whether a look must stop now: ``deadline`` (on :func:`time.perf_counter`) passed, or
    ``should_stop`` answers True."""
    if deadline is not None and time.perf_counter() >= deadline:
        return True
    return should_stop is not None and should_stop()


class LookaheadExpert:
    """Chooses among the network's best pairs by playing each on in a copy of the day.

    :param q_function: the network that ranks the candidates and plays the rollouts.
    :param candidates: pairs looked at per state (the network's best first).
    :param candidates_per_booking: the network's candidate drivers per booking.
    :param time_budget_s: wall-clock budget of one decision's rollouts (None: none, the
        choice then never depends on the machine's speed); past it no further candidate is
        looked at, and a rollout in progress is abandoned.

    ``should_stop`` (None: never) is asked at every rollout step too; once it answers True no
    rollout goes on, and the decision is the network's choice or the best of the candidates
    looked at to their end.
    """

    def __init__(
        self,
        q_function: NumpyPairQ,
        candidates: int = 3,
        candidates_per_booking: int = 6,
        time_budget_s: float | None = None,
    ) -> None:
        check_look(candidates, time_budget_s)
        self.q_function = q_function
        self.candidates = int(candidates)
        self.time_budget_s = time_budget_s
        self.cut_short = 0  # decisions whose budget ran out before every candidate was seen
        # Its own builder: the rollouts' copies would otherwise evict the caller's day cache.
        self.features = FeatureBuilder(candidates_per_booking)
        self._rollout_env: DispatchEnv | None = None
        self.rollouts = 0
        self.should_stop: Callable[[], bool] | None = None

    def ranked(self, state: PairState) -> tuple[int, np.ndarray]:
        """The network's choice (a candidate index or :data:`WAIT`) and its best pairs,
        best first (ties by the state's position-free order)."""
        q_wait, q_pairs = self.q_function(state)
        best = choose(q_wait, q_pairs, state.pair_order, TIE_TOLERANCE)
        order = np.lexsort((state.pair_order, -q_pairs))[: self.candidates]
        return best, order

    def rollout_reward(
        self,
        env: DispatchEnv,
        state: PairState,
        candidate: int,
        deadline: float | None = None,
    ) -> float | None:
        """The reward of taking ``candidate`` in the env's state and playing the bookings
        known now to their end with the network's greedy choices; None when abandoned (past
        ``deadline``, on :func:`time.perf_counter`, or ``should_stop``)."""
        return self.action_reward(env, state.action(candidate), deadline)

    def action_reward(
        self, env: DispatchEnv, action: int, deadline: float | None = None
    ) -> float | None:
        """:meth:`rollout_reward` of an env action (``0``: wait), whoever chose it."""
        sim = env.sim.copy()
        sim.forget_unreleased()
        sim.offer_every_booking()  # a live day's copy offers its later bookings as it plays
        rollout = self._environment(env)
        rollout.resume(sim)
        _, total, terminated, _, _ = rollout.step(action)
        features, q_function = self.features, self.q_function
        should_stop = self.should_stop
        while not terminated:
            if look_stopped(deadline, should_stop):
                return None
            next_state = features.build(rollout)
            action = greedy_candidate(q_function, next_state)
            _, reward, terminated, _, _ = rollout.step(next_state.action(action))
            total += reward
        self.rollouts += 1
        return float(total)

    def values(self, env: DispatchEnv, state: PairState) -> tuple[int, np.ndarray, np.ndarray]:
        """``(network's choice, candidates looked at, their rollout rewards)``; no candidate
        is looked at when the network waits or has a single pair. With a time budget the
        candidates are looked at best first until it is spent."""
        best, order = self.ranked(state)
        if best == WAIT or order.size <= 1:
            return best, order[:0], np.empty(0)
        rewards = self.rollout_rewards(env, state, order)
        return best, order[: rewards.size], rewards

    def rollout_rewards(self, env: DispatchEnv, state: PairState, order: np.ndarray) -> np.ndarray:
        """The rollout rewards of the candidates in ``order``, in that order, until the time
        budget is spent or the caller stops the look (the rollout in progress then counts
        for nothing: fewer rewards than candidates, none at all when the first was cut)."""
        budget = self.time_budget_s
        deadline = None if budget is None else time.perf_counter() + budget
        return self.action_rewards(env, [state.action(int(c)) for c in order], deadline)

    def action_rewards(
        self, env: DispatchEnv, actions: list[int], deadline: float | None = None
    ) -> np.ndarray:
        """:meth:`action_reward` of each of ``actions``, in order, until ``deadline`` passes
        or the caller stops the look (fewer rewards than actions then; the decision counts
        in :attr:`cut_short`)."""
        rewards: list[float] = []
        for action in actions:
            reward = self.action_reward(env, action, deadline)
            if reward is None:
                self.cut_short += 1
                break
            rewards.append(reward)
        return np.array(rewards)

    def choose(self, env: DispatchEnv, state: PairState) -> int:
        """The expert's choice in the env's current state: a candidate index of ``state``
        or :data:`WAIT`."""
        best, order, rewards = self.values(env, state)
        if order.size == 0 or rewards.size == 0:
            return best
        return int(order[int(np.argmax(rewards))])

    def release(self) -> None:
        """Drop the rollout env and the day its builder keeps (after a served request: the
        copies of its day are not kept past it)."""
        self._rollout_env = None
        self.features.forget()

    def _environment(self, env: DispatchEnv) -> DispatchEnv:
        rollout = self._rollout_env
        if rollout is None or rollout.config is not env.config:
            rollout = DispatchEnv(preset=None, scenario=env.scenario, config=env.config)
            self._rollout_env = rollout
        return rollout

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_rollout_env"] = None  # rebuilt on first use (worker processes)
        return state


class LookaheadPolicy:
    """The lookahead expert as a policy (:class:`rldispatch.policies.base.Policy`): the
    network's choice improved by a rollout per candidate at every decision."""

    def __init__(
        self,
        q_function: NumpyPairQ,
        candidates: int = 3,
        candidates_per_booking: int = 6,
        name: str = "lookahead",
        time_budget_s: float | None = None,
    ) -> None:
        self.name = name
        self.features = FeatureBuilder(candidates_per_booking)
        self.expert = LookaheadExpert(q_function, candidates, candidates_per_booking, time_budget_s)

    def act(self, env: DispatchEnv) -> int:
        state = self.features.build(env)
        return state.action(self.expert.choose(env, state))
