"""A ``guided-reopt`` model file loaded for serving.

The model (format ``rldispatch-guided-reopt``, ``docs/guided_reopt.md``) decides by
re-planning the live state with OR-Tools, its learned terms in the objective, so it plays any
fleet and runs its network on NumPy (there is no ONNX export: the solver is the model's
larger part). A round is the plan's assignments (:meth:`GuidedPlayer.act`); a suggestion is the
driver the plan gives the booking, or waiting when the plan leaves it open
(:meth:`GuidedPlayer.slot_values`). With ``serve --lookahead N`` its actions and a suggestion's
driver are the look ahead's (:mod:`rldispatch.agents.guided_reopt.lookahead`): the plan's
choice played on against others in copies of the live day, within the decision's budget, which
counts the re-plan too (its search stops at the budget).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rldispatch.agents.guided_reopt.lookahead import GuidedLookaheadPolicy
from rldispatch.agents.guided_reopt.model_file import (
    GuidedReoptMetadata,
    GuidedReoptModelError,
    LoadedGuidedReoptModel,
    load_guided_model,
)
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.pairwise.serving import pairwise_booking_slots
from rldispatch.agents.serving import (
    Lookahead,
    ModelLoadError,
    driver_slots,
    served_env_config,
    trained_road_network,
)
from rldispatch.env import EnvConfig

SERVING_RUNTIMES = ("auto", "numpy")

WAIT_VALUE = 0.5
"""A suggestion's value of waiting: below the driver the plan gives the booking (1), above
the others (minus their insertion cost), so a booking the plan leaves open waits."""


@dataclass(frozen=True)
class LoadedGuidedModel:
    """A ``guided-reopt`` model ready to serve (one network shared by every thread)."""

    metadata: GuidedReoptMetadata
    version: str
    preset: str | None
    env_config: EnvConfig
    path: Path
    model: LoadedGuidedReoptModel
    runtime: str = "numpy"
    kind: Literal["guided-reopt"] = "guided-reopt"
    can_look_ahead: bool = True

    @property
    def road_network(self) -> str | None:
        """The road network file it was trained on (None: the travel formula)."""
        return trained_road_network(self.metadata.training_summary)

    @property
    def max_drivers(self) -> int | None:
        """None: it plays any fleet."""
        return None

    def env_config_for(self, n_drivers: int) -> EnvConfig:
        return replace(self.env_config, max_drivers=driver_slots(n_drivers))

    def serving_config(self, n_drivers: int, n_bookings: int | None = None) -> EnvConfig:
        """A driver slot per driver and, for a suggestion, a booking slot per open booking
        (up to the pairwise limit), so the booking asked about is visible."""
        config = replace(self.env_config, max_drivers=max(n_drivers, 1))
        if n_bookings is not None:
            slots = pairwise_booking_slots(self.env_config.visible_slots, n_bookings)
            config = replace(config, visible_slots=slots)
        return config

    def new_player(self, lookahead: Lookahead | None = None) -> GuidedPlayer:
        """A player of its own (the policy keeps the plan of the env it last saw); with
        ``lookahead`` its plan's choices are played on against the known reward's best, within
        the lookahead's budget per decision."""
        policy = GuidedReoptPolicy(
            self.model.network,
            horizon_min=self.metadata.horizon_min,
            floor_min=self.metadata.gate_floor_min,
            take_driver=self.metadata.take_driver,
        )
        if lookahead is None:
            return GuidedPlayer(policy)
        looking = GuidedLookaheadPolicy(
            policy, lookahead.candidates, time_budget_s=lookahead.time_budget_s
        )
        return GuidedPlayer(policy, looking)


class GuidedPlayer:
    """The guided re-optimiser deciding on a live env; with a look ahead, its actions and a
    booking's driver are the look ahead's."""

    def __init__(
        self, policy: GuidedReoptPolicy, lookahead: GuidedLookaheadPolicy | None = None
    ) -> None:
        self.policy = policy
        self.lookahead = lookahead
        self._asked_at: float | None = None  # when the last suggestion's decision began

    def release(self) -> None:
        """Drop what the look ahead keeps of the last request's day."""
        if self.lookahead is not None:
            self.lookahead.release()

    def slot_values(self, env: Any, slot: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The drivers for the booking in ``slot``, the plan's first; their values; waiting's.
        With a look ahead its budget begins here: the re-plan's search stops at it, and
        :meth:`slot_pick` plays on in what is left."""
        looking = self.lookahead
        if looking is None:
            scores = self.policy.candidate_scores(env, slot)
        else:
            self._asked_at = time.perf_counter()
            with looking.replans_within_budget(self._asked_at):
                scores = self.policy.candidate_scores(env, slot)
        drivers = np.array([score.driver for score in scores], dtype=np.int64)
        values = np.array([score.score for score in scores], dtype=np.float64)
        return drivers, values, WAIT_VALUE

    def slot_pick(self, env: Any, slot: int, drivers: np.ndarray) -> int:
        if self.lookahead is None:
            return 0
        return self.lookahead.pick_driver(env, slot, drivers, self._asked_at)

    def act(self, env: Any) -> int:
        if self.lookahead is None:
            return self.policy.act(env)
        return self.lookahead.act(env)


def load_guided_served_model(path: str | Path, runtime: str = "auto") -> LoadedGuidedModel:
    """Load a ``guided-reopt`` model file for serving (its network on NumPy)."""
    path = Path(path)
    try:
        loaded = load_guided_model(path)
    except GuidedReoptModelError as error:
        raise ModelLoadError(f"model: {error}") from error
    metadata = loaded.metadata
    return LoadedGuidedModel(
        metadata=metadata,
        version=str(metadata.version),
        preset=metadata.preset,
        env_config=served_env_config(metadata.env_config or {}),
        path=path,
        model=loaded,
    )
