"""``guided-reopt`` with a look ahead on top (``evaluate --lookahead N``).

At each decision the policy's own action (``reopt``'s re-plan with the learned terms, its
take where the re-plan waits) and the known reward's ``N`` best assignments are each played
on in a copy of the day that knows only the bookings known then, every later decision of the
copy the known-reward network's greedy choice (the network the policy's own takes use,
:meth:`GuidedReoptPolicy.known_reward`, under
:class:`~rldispatch.agents.pairwise.lookahead.LookaheadExpert`, the expert of the pairwise
network's ``--lookahead``); the action whose copy ends with the most reward is taken, ties
to the policy's own. The look costs a rollout per action (tenths of a second on a day of 20
drivers); with no time budget the choice never depends on the machine's speed.

To serve it (``serve --lookahead N`` with a guided-reopt model), ``time_budget_s`` bounds a
whole decision, the re-plan included: the re-plan's search stops at the budget with the best
plan found so far (:attr:`~rldispatch.policies.reopt.ReoptPolicy.replan_deadline`; the
bookings new since the previous re-plan that it leaves out go to cheapest insertion), then the
actions are played on in turn (its own first) until the budget is spent, a rollout in progress
then counts for nothing, and the choice is the best of those played to their end (its own when
none was). A decision whose re-plan spends the budget is the re-plan's, with no copy made. The
rollouts also stop once the decision has lasted the :data:`TAIL_QUANTILE` quantile of the
recent decisions' time before their rollouts: the look ahead fills the fast decisions' time
and lengthens no slow one, so its slowest decisions are the re-plans' own. A caller may also
stop the look at any step (:attr:`GuidedLookaheadPolicy.should_stop`: a request's budget
spent, its client gone). A suggestion's budget (:meth:`GuidedLookaheadPolicy.pick_driver`)
begins with the re-plan that ranked its drivers.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.pairwise.lookahead import LookaheadExpert, check_look, look_stopped
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.env import DispatchEnv
from rldispatch.policies.base import assignment_action

TAIL_QUANTILE = 0.9
"""With a budget, a decision's rollouts also stop once it has lasted this quantile of the recent
decisions' time before their rollouts (the re-plan's share): the look ahead fills the time of
the fast decisions and lengthens none past it, so its slowest decisions are the re-plans'."""
TAIL_WINDOW = 2000
"""The recent decisions that quantile is read from (a service's morning, several days of an
evaluation): the quantile is of the traffic, not of one state."""
TAIL_MIN_DECISIONS = 20
"""Until this many decisions were seen, the budget alone bounds the rollouts."""


class GuidedLookaheadPolicy:
    """:class:`GuidedReoptPolicy`'s action against the known reward's best assignments, each
    played on (module docstring).

    :param guided: the policy whose action is always among those played on.
    :param candidates: the known reward's best assignments played on beside it.
    :param time_budget_s: wall-clock budget of one decision, its re-plan included (None:
        none, the choice then never depends on the machine's speed).
    :param tail_quantile: with a budget, the rollouts also stop once the decision has lasted
        this quantile of the recent decisions' time before their rollouts
        (:data:`TAIL_QUANTILE`; None: the budget alone).

    ``should_stop`` (None: never) is asked at every rollout step too; once it answers True no
    rollout goes on.
    """

    def __init__(
        self,
        guided: GuidedReoptPolicy,
        candidates: int = 3,
        name: str = "",
        time_budget_s: float | None = None,
        tail_quantile: float | None = TAIL_QUANTILE,
    ) -> None:
        check_look(candidates, time_budget_s)
        if tail_quantile is not None and not 0.0 < tail_quantile <= 1.0:
            raise ValueError("guided look ahead: tail_quantile must be in (0, 1] (or None)")
        self.guided = guided
        self.candidates = int(candidates)
        self.time_budget_s = time_budget_s
        self.tail_quantile = tail_quantile
        self._before_rollouts: deque[float] = deque(maxlen=TAIL_WINDOW)
        self.name = name or f"{guided.name}+lookahead"
        self._expert: LookaheadExpert | None = None
        self.should_stop: Callable[[], bool] | None = None
        self.overruled = 0  # decisions where another action than the policy's own was taken
        self.cut_short = 0  # decisions whose budget ran out before every action was played on

    def expert(self, greedy: PairwisePolicy) -> LookaheadExpert:
        """The look ahead on ``greedy``'s network (made again when the network is another:
        other reward weights). Its own feature builder: the rollouts' copies would otherwise
        evict the day ``greedy``'s builder keeps."""
        expert = self._expert
        if expert is None or expert.q_function is not greedy.q_function:
            expert = self._expert = LookaheadExpert(
                greedy.q_function, self.candidates, greedy.features.candidates_per_booking
            )
        return expert

    def act(self, env: DispatchEnv) -> int:
        started = time.perf_counter()
        with self.replans_within_budget(started):
            own = int(self.guided.act(env))
        deadline = self.rollout_deadline(started)
        if look_stopped(deadline, self.should_stop):  # the re-plan spent it: no copy made
            self.cut_short += 1
            return own
        greedy = self.guided.known_reward(env.config.reward)
        expert = self.expert(greedy)
        state = greedy.features.build(env)
        _, order = expert.ranked(state)
        actions = [own]
        for candidate in order.tolist():
            action = state.action(int(candidate))
            if action not in actions:
                actions.append(action)
        if len(actions) == 1:
            return own
        best = actions[self._best_played_on(env, expert, actions, deadline)]
        self.overruled += best != own
        return best

    def pick_driver(
        self, env: DispatchEnv, slot: int, drivers: np.ndarray, started: float | None = None
    ) -> int:
        """Which of ``drivers`` (the booking in ``slot``'s candidates, the plan's first) to
        give it: the index of the one whose rollout ends best among the first
        ``candidates + 1`` (the plan's and as many others as an action looks at); 0 when no
        rollout ran to its end (a suggestion's look ahead; its budget counts from
        ``started``, on :func:`time.perf_counter`, the moment the re-plan that ranked
        ``drivers`` began; default: now)."""
        if started is None:
            started = time.perf_counter()
        deadline = self.rollout_deadline(started)
        if drivers.size <= 1:
            return 0
        expert = self.expert(self.guided.known_reward(env.config.reward))
        looked = drivers[: self.candidates + 1].tolist()
        actions = [assignment_action(env, driver, slot) for driver in looked]
        return self._best_played_on(env, expert, actions, deadline)

    def release(self) -> None:
        """Drop the rollout env and the day its builder keeps (after a served request)."""
        if self._expert is not None:
            self._expert.release()

    def deadline(self, started: float) -> float | None:
        """The end, on :func:`time.perf_counter`, of a decision begun at ``started``; None
        without a budget."""
        budget = self.time_budget_s
        return None if budget is None else started + budget

    def rollout_deadline(self, started: float) -> float | None:
        """When the rollouts of a decision begun at ``started`` stop: its budget's end, or
        sooner, the :attr:`tail_quantile` of the recent decisions' time before their
        rollouts, which this one's joins (None without a budget)."""
        deadline = self.deadline(started)
        if deadline is None:
            return None
        before = self._before_rollouts
        if self.tail_quantile is not None and len(before) >= TAIL_MIN_DECISIONS:
            deadline = min(deadline, started + float(np.quantile(before, self.tail_quantile)))
        before.append(time.perf_counter() - started)
        return deadline

    @contextmanager
    def replans_within_budget(self, started: float) -> Iterator[None]:
        """Within the block the guided policy's re-plans stop their search at the end of the
        budget of a decision begun at ``started``
        (:attr:`~rldispatch.policies.reopt.ReoptPolicy.replan_deadline`)."""
        self.guided.replan_deadline = self.deadline(started)
        try:
            yield
        finally:
            self.guided.replan_deadline = None

    def _best_played_on(
        self, env: DispatchEnv, expert: LookaheadExpert, actions: list[int], deadline: float | None
    ) -> int:
        """The index in ``actions`` of the one whose rollout ends best, the first on ties,
        among those played to their end before ``deadline`` or ``should_stop``; 0 when none
        was."""
        expert.should_stop = self.should_stop
        try:
            rewards = expert.action_rewards(env, actions, deadline)
        finally:
            expert.should_stop = None
        if rewards.size < len(actions):
            self.cut_short += 1
        return int(np.argmax(rewards)) if rewards.size else 0
