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
"""

from __future__ import annotations

import numpy as np

from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.env import DispatchEnv


class GuidedLookaheadPolicy:
    """:class:`GuidedReoptPolicy`'s action against the known reward's best assignments, each
    played on (module docstring).

    :param guided: the policy whose action is always among those played on.
    :param candidates: the known reward's best assignments played on beside it.
    """

    def __init__(self, guided: GuidedReoptPolicy, candidates: int = 3, name: str = "") -> None:
        if candidates < 1:
            raise ValueError(f"candidates: must be at least 1, got {candidates!r}")
        self.guided = guided
        self.candidates = int(candidates)
        self.name = name or f"{guided.name}+lookahead"
        self._expert: LookaheadExpert | None = None
        self.overruled = 0  # decisions where another action than the policy's own was taken

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
        own = int(self.guided.act(env))
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
        rewards = [expert.action_reward(env, action) for action in actions]
        best = actions[int(np.argmax(rewards))]
        self.overruled += best != own
        return best
