"""``RLDispatchManager``: the learned policy behind a heuristic safety net.

Every request is turned into the simulator state a policy sees in ``evaluate`` (see
:mod:`rldispatch.service.decisions.snapshot`), on an env built for that request alone, and played by
the same policy objects ``evaluate`` plays: a pairwise model's ``PairwisePolicy``, a flat
model's ``DQNPolicy`` (or its Q-function on PyTorch or ONNX Runtime), the fallback's baseline.

Two questions: :meth:`RLDispatchManager.suggest` (which driver for this booking, and where in
its plan) and :meth:`RLDispatchManager.dispatch_round` (what the policy does now with the
whole state: the assignments it makes, in order, before it waits, as ``evaluate`` plays it).

The models come from a :class:`~rldispatch.service.models.model_holder.ModelHolder`: the champion,
and optionally a challenger answering a share of the ``rl`` arm's bookings (suggestions only;
rounds are the champion's); either is swapped without a restart, and each answer reads the
models once, so a swap never mixes two models in one answer.

Who answers, in this order (the first that applies is the fallback reason; see
``docs/service.md``):

==========================  ===============================================================
reason                      when
==========================  ===============================================================
``shadow_mode``             shadow mode: the RL answer is computed and logged, not served
``rl_disabled``             an admin has switched RL off
``ab_heuristic_arm``        the booking's id hashes into the heuristic arm (suggest only)
``model_missing``           the service was started without a model
``model_load_failed``       the model file is missing, broken, foreign or inconsistent
``fleet_too_large``         more drivers than the model has driver slots (flat models only)
``booking_not_visible``     the booking is not among the model's visible booking slots
``no_feasible_driver``      no driver can serve the booking in time
``stops_not_read``          the model does not read plans of stops (shared rides, breaks,
                            ride limits) and the request has them
``model_error``             the model raised or answered the wrong shape (also an error)
``invalid_action``          the model's Q-values for the allowed actions are not finite
``request_budget``          the request's time budget was spent before the model answered
                            (suggest only: a round ends with ``ended: "budget"`` instead)
``rl_waited``               the model's best allowed action was to wait (suggest only)
==========================  ===============================================================

Every served model, whatever its kind and runtime, answers the same three questions
(``serving_config``, and its player's ``slot_values`` and ``act``), so nothing here depends on
the kind. Everything here is safe to call from several threads; nothing kept between requests
grows with their size (envs are built per request; per thread only a player object, which
drops what it kept of a request's day once the request is answered).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from rldispatch.agents.serving import (
    MAX_MODEL_BYTES,
    InvalidValues,
    Lookahead,
    ServedModel,
    road_network_difference,
)
from rldispatch.domain import Booking, ScenarioError, TravelConfig, travel_to_dict
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.rewards import RewardConfig
from rldispatch.rewards_file import differing_weights, reward_to_dict
from rldispatch.service.config import DEFAULT_FALLBACK_TIME_LIMIT_S
from rldispatch.service.decisions.ab import Arm, ToggleState, assign_arm
from rldispatch.service.decisions.answers import Candidate, RoundAssignment, candidates
from rldispatch.service.decisions.request_budget import RequestBudget
from rldispatch.service.decisions.round_play import ModelFailed, Round, RoundEnd, play_round
from rldispatch.service.decisions.snapshot import LiveDay, LiveDriver, LiveEnv, LiveState, live_env
from rldispatch.service.decisions.stats import StatsSnapshot, SuggestionStats
from rldispatch.service.models.model_holder import ModelHolder, ModelSlot, slot_status

logger = logging.getLogger("rldispatch.service")

Source = Literal["rl", "fallback"]
FALLBACK_REASONS = (
    "shadow_mode",
    "rl_disabled",
    "ab_heuristic_arm",
    "model_missing",
    "model_load_failed",
    "fleet_too_large",
    "booking_not_visible",
    "no_feasible_driver",
    "stops_not_read",
    "model_error",
    "invalid_action",
    "request_budget",
    "rl_waited",
)
TOP_CANDIDATES = 5
ERROR_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class LiveRequest:
    """One booking to place (times from now) in a live state."""

    booking: Booking
    state: LiveState

    @functools.cached_property
    def state_asked_first(self) -> LiveState:
        """The state with the booking asked about first among the open ones."""
        return self.state.with_booking_first(self.booking)

    def with_arrays(self) -> LiveRequest:
        """The request with its states' arrays made now (where it is read)."""
        self.state.with_arrays()
        _ = self.state_asked_first
        return self


@dataclass(frozen=True)
class Suggestion:
    booking_id: str
    driver_id: str | None
    source: Source
    reason: str | None
    model_version: str | None
    arm: Arm | None
    candidates: tuple[Candidate, ...]
    latency_ms: float
    chosen: Candidate | None = None
    shadow_driver_id: str | None = None
    shadow_reason: str | None = None


@dataclass(frozen=True)
class DispatchRound:
    """What a policy does now: its assignments in order, then why it stopped."""

    source: Source
    reason: str | None
    model_version: str | None
    assignments: tuple[RoundAssignment, ...]
    waiting: tuple[str, ...]
    ended: RoundEnd
    latency_ms: float
    shadow_assignments: tuple[RoundAssignment, ...] | None = None
    shadow_reason: str | None = None


@dataclass(frozen=True)
class _Answer:
    """One answerer's choice for a booking: a driver index (or None) and its candidates; for
    the learned policy, the fallback reason when it has no answer."""

    driver: int | None
    reason: str | None
    candidates: tuple[Candidate, ...] = ()
    chosen: Candidate | None = None


AnswerT = TypeVar("AnswerT", _Answer, Round)


def _who_answers(
    toggle: ToggleState,
    arm: Arm | None,
    learned: Callable[[], AnswerT],
    fallback: Callable[[], AnswerT],
) -> tuple[AnswerT, Source, str | None, AnswerT | None]:
    """``(answer, source, fallback reason, the learned answer shown beside it in shadow
    mode)``: the learned answer when RL is on, the request is in its arm and it has one;
    the fallback's otherwise (shadow mode: always, the learned one computed beside it)."""
    learned_answer = None
    if toggle.shadow:
        reason = "shadow_mode"
        learned_answer = learned()
    elif not toggle.enabled:
        reason = "rl_disabled"
    elif arm == "heuristic":
        reason = "ab_heuristic_arm"
    else:
        learned_answer = learned()
        reason = learned_answer.reason
    if reason is None and learned_answer is not None:
        return learned_answer, "rl", None, None
    return fallback(), "fallback", reason, learned_answer if toggle.shadow else None


@functools.lru_cache(maxsize=8)
def _preset_travel(preset: str | None) -> TravelConfig:
    return LiveDay.from_preset(preset).travel


class RLDispatchManager:
    """Loads a model, turns live states into its env, suggests and dispatches, falls back.

    :param model_path: flat DQN model file (or its ``.onnx`` export) or pairwise model file;
        None serves the fallback only.
    :param runtime: ``auto``, ``numpy``, ``torch`` or ``onnx`` (see
        :func:`~rldispatch.service.models.loading.load_served_model`: each kind names its own).
    :param fallback_policy: the baseline answering when RL does not (``insertion``).
    :param fallback_time_limit_s: a ``reopt`` fallback's wall-clock cap per re-plan (None:
        none; answers then never depend on the machine's speed).
    :param state: the initial toggle state (RL off by default).
    :param day: travel model, clock and area of the service day (default: the model's preset).
    :param models_dir: the folder model files named by the switch row must lie in.
    :param lookahead: how a pairwise or guided-reopt model's answers look ahead (None: they
        are the model's own): each round decision, and the driver of a suggestion among the
        booking's best candidates; a flat model's never do.
    :param travel: the fleet's travel model (``serve --travel``; None: the model's preset's).
        A request that carries its own is played with it.
    :param reward: the reward weights answers are scored under (``serve --reward``; None:
        the model's own); they weigh a ``reopt`` fallback's and a lookahead's choices.
    :param road_network: an OpenStreetMap extract every request travels on (``serve
        --road-network``; None: the formula), a request's own travel block included.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        runtime: str = "auto",
        fallback_policy: str = "insertion",
        fallback_time_limit_s: float | None = DEFAULT_FALLBACK_TIME_LIMIT_S,
        state: ToggleState | None = None,
        day: LiveDay | None = None,
        max_model_bytes: int = MAX_MODEL_BYTES,
        models_dir: Path | None = None,
        lookahead: Lookahead | None = None,
        travel: TravelConfig | None = None,
        reward: RewardConfig | None = None,
        road_network: str | None = None,
    ) -> None:
        if fallback_policy not in BASELINES:
            raise ValueError(
                f"fallback_policy: unknown policy {fallback_policy!r}; "
                f"choose one of {sorted(BASELINES)}"
            )
        if fallback_time_limit_s is not None and not fallback_time_limit_s > 0:
            raise ValueError(
                f"fallback_time_limit_s: must be positive or None, got {fallback_time_limit_s!r}"
            )
        self.fallback_policy = fallback_policy
        self.fallback_time_limit_s = fallback_time_limit_s
        self.lookahead = lookahead
        self._cut_short = 0
        self.models = ModelHolder(runtime, models_dir=models_dir, max_model_bytes=max_model_bytes)
        self.models.start_with(Path(model_path) if model_path is not None else None)
        self.reward = reward
        self.env_config = self.model.env_config if self.model else EnvConfig()
        if reward is not None:
            self.env_config = replace(self.env_config, reward=reward)
        preset = self.model.preset if self.model else None
        self.day = day or LiveDay.from_preset(preset)
        self.travel_source = f"preset {preset or 'geneva'}" if day is None else "service day"
        if travel is not None:
            self.day = replace(self.day, travel=travel)
            self.travel_source = "serve --travel"
        if road_network is not None:
            self.day = replace(self.day, travel=replace(self.day.travel, road_network=road_network))
        self._travel_counts = {"requests_with_travel": 0, "travel_differs_from_training": 0}
        differing = self.reward_status()["differing"]
        if differing:
            logger.warning(
                "the model %s was trained under other reward weights; answers are scored "
                "under serve --reward: %s",
                self.model_version,
                ", ".join(differing),
            )
        roads = self.road_network_differing()
        if roads:
            logger.warning("the model %s was %s", self.model_version, roads)
        self.stats = SuggestionStats()
        self._state = state or ToggleState()
        self._state_lock = threading.Lock()
        self._local = threading.local()
        self._last_error_log = 0.0

    # --- state -------------------------------------------------------------------------------

    @property
    def state(self) -> ToggleState:
        with self._state_lock:
            return self._state

    def set_state(self, state: ToggleState) -> None:
        with self._state_lock:
            self._state = state

    @property
    def model(self) -> ServedModel | None:
        """The champion model (None: none loaded)."""
        return self.models.served.champion.model

    @model.setter
    def model(self, model: ServedModel) -> None:
        self.models.install("champion", self.model_path, model)

    @property
    def model_path(self) -> Path | None:
        return self.models.served.champion.path

    @property
    def model_error(self) -> str | None:
        return self.models.served.champion.error

    @property
    def model_version(self) -> str | None:
        return self.model.version if self.model else None

    def model_status(self) -> dict[str, Any]:
        """Whether a model is loaded, which, of what kind, on what runtime, and why not.

        ``max_drivers`` is None for a pairwise model: it plays any fleet.
        """
        return slot_status(self.models.served.champion)

    def statistics(self) -> StatsSnapshot:
        return self.stats.snapshot()

    # --- the env of a request ----------------------------------------------------------------

    def rl_config(
        self, n_drivers: int, n_bookings: int | None = None, model: ServedModel | None = None
    ) -> EnvConfig | None:
        """The env config ``model`` (default: the champion) plays a fleet of ``n_drivers`` on
        (None: it cannot).

        Each served model says (``serving_config``): a flat model has its own, a pairwise
        model a slot per driver and, for a one-booking question of ``n_bookings`` open
        bookings, a booking slot for each.
        """
        model = self.model if model is None else model
        if model is None:
            return None
        config = model.serving_config(n_drivers, n_bookings)
        if config is not None and self.reward is not None:
            config = replace(config, reward=self.reward)
        return config

    def fallback_config(self, n_drivers: int) -> EnvConfig:
        """The fallback's env config: the service's, with a driver slot per driver."""
        return replace(self.env_config, max_drivers=max(n_drivers, 1))

    # --- suggestions -------------------------------------------------------------------------

    def suggest(self, request: LiveRequest, budget: RequestBudget | None = None) -> Suggestion:
        """The driver for ``request.booking`` (and where in its plan): the learned policy's,
        or the heuristic's (also when ``budget`` is spent before the learned one answers)."""
        started = time.perf_counter()
        self._count_travel(request.state)
        state = self.state
        experiment = state.enabled and not state.shadow
        arm = assign_arm(request.booking.id, state.ab_ratio) if experiment else None
        served = self.models.for_booking(request.booking.id)
        answer, source, reason, shadow = _who_answers(
            state,
            arm,
            lambda: self._rl_answer(request, served, budget),
            lambda: self._heuristic_answer(request),
        )
        latency_s = time.perf_counter() - started
        self.stats.record(source, reason, arm, latency_s)
        drivers = request.state.drivers
        return Suggestion(
            booking_id=request.booking.id,
            driver_id=None if answer.driver is None else drivers[answer.driver].id,
            source=source,
            reason=reason,
            model_version=served.version if arm == "rl" or state.shadow else self.model_version,
            arm=arm,
            candidates=answer.candidates,
            latency_ms=latency_s * 1e3,
            chosen=answer.chosen,
            shadow_driver_id=(
                drivers[shadow.driver].id if shadow and shadow.driver is not None else None
            ),
            shadow_reason=shadow.reason if shadow else None,
        )

    def warm_up(self) -> None:
        """Answer a tiny request both ways once (compiled kernels load, caches fill)."""
        booking = Booking("warm-up", 0.0, (46.2044, 6.1432), (46.1935, 6.149), 10.0, (0.0, 30.0))
        driver = LiveDriver("warm-up", (46.21, 6.112), 0.0, (0.0, 120.0))
        live = LiveState((driver,), (), minute_of_day=self.day.start_min)
        request = LiveRequest(booking, live)
        self._rl_answer(request)
        self._heuristic_answer(request)
        self._fallback_round(live)

    def _rl_answer(
        self,
        request: LiveRequest,
        served: ModelSlot | None = None,
        budget: RequestBudget | None = None,
    ) -> _Answer:
        """The learned answer of ``served`` (default: the champion); none (``request_budget``)
        once ``budget`` is spent."""
        served = served or self.models.served.champion
        try:
            answer = self._rl_answer_within(request, served, budget)
        finally:
            self._release(served.model)
        if budget is not None and answer.reason is None and budget.spent():
            return _Answer(None, "request_budget", answer.candidates)
        return answer

    def _rl_answer_within(
        self, request: LiveRequest, served: ModelSlot, budget: RequestBudget | None
    ) -> _Answer:
        model = served.model
        if model is None:
            return _Answer(None, "model_load_failed" if served.path else "model_missing")
        live_state = request.state_asked_first
        config = self.rl_config(len(live_state.drivers), len(live_state.open_bookings), model)
        if config is None:
            return _Answer(None, "fleet_too_large")
        live = live_env(live_state, self.day, config, one_decision=True)
        if budget is not None and budget.spent():
            return _Answer(None, "request_budget")
        env = live.env
        slots = np.flatnonzero(env.visible == live.booking_ids.index(request.booking.id))
        if slots.size == 0:
            return _Answer(None, "booking_not_visible")
        slot = int(slots[0])
        if not env.table.feasible[:, slot].any():
            return _Answer(None, "no_feasible_driver")
        try:
            drivers, values, wait_q = self._slot_values(live, slot, model)
        except ModelFailed as failure:
            return _Answer(None, failure.reason)
        top = candidates(live, drivers[:TOP_CANDIDATES], slot, values[:TOP_CANDIDATES])
        if drivers.size == 0 or wait_q > values[0]:
            return _Answer(None, "rl_waited", top)
        try:
            pick = self._slot_pick(live, slot, drivers, model, budget)
        except ModelFailed as failure:
            return _Answer(None, failure.reason)
        chosen = (
            top[pick]
            if pick < len(top)
            else candidates(live, drivers[pick : pick + 1], slot, values[pick : pick + 1])[0]
        )
        return _Answer(int(drivers[pick]), None, top, chosen)

    def _slot_values(
        self, live: LiveEnv, slot: int, model: ServedModel
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """``model``'s candidate drivers for the booking in ``slot``, best first, their
        values and the value of waiting."""
        try:
            drivers, values, wait_q = self._player(model).slot_values(live.env, slot)
        except ScenarioError as error:
            raise ModelFailed("stops_not_read", error) from error
        except Exception as error:  # noqa: BLE001 - a failing model must never fail a request
            self._model_failed(error)
            raise ModelFailed("model_error", error) from error
        if not (np.all(np.isfinite(values)) and np.isfinite(wait_q)):
            raise ModelFailed("invalid_action")
        return drivers, values, float(wait_q)

    def _slot_pick(
        self,
        live: LiveEnv,
        slot: int,
        drivers: np.ndarray,
        model: ServedModel,
        budget: RequestBudget | None = None,
    ) -> int:
        """Which of ``drivers`` (best first) answers: the lookahead's choice for a pairwise
        model that looks ahead (its rollouts stop once ``budget`` is spent), else the first."""
        player = self._player(model)
        if getattr(player, "lookahead", None) is None:
            return 0
        try:
            with self._looking_ahead(player, budget):
                return player.slot_pick(live.env, slot, drivers)
        except Exception as error:  # noqa: BLE001 - a failing model must never fail a request
            self._model_failed(error)
            raise ModelFailed("model_error", error) from error

    @contextmanager
    def _looking_ahead(self, player: Any, budget: RequestBudget | None) -> Iterator[None]:
        """In the block, ``player``'s lookahead (if it has one) stops its rollouts once
        ``budget`` is spent; after it, add to this worker's count the decisions whose
        lookahead was cut short."""
        expert = getattr(player, "lookahead", None)
        before = expert.cut_short if expert is not None else 0
        if expert is not None:
            expert.should_stop = None if budget is None else budget.spent
        try:
            yield
        finally:
            if expert is not None:
                expert.should_stop = None
            if expert is not None and expert.cut_short != before:
                with self._state_lock:
                    self._cut_short += expert.cut_short - before

    def _heuristic_answer(self, request: LiveRequest) -> _Answer:
        """The fallback policy on the live state with this booking as the only open one,
        looking ahead far enough to see it (a booking for later gets its driver now)."""
        live_state = request.state.with_open_bookings((request.booking,))
        config = self.fallback_config(len(live_state.drivers))
        if request.booking.window[0] > config.lookahead_min:
            config = replace(config, lookahead_min=request.booking.window[0])
        live = live_env(live_state, self.day, config, one_decision=True)
        env = live.env
        if env.visible.size == 0:  # not visible: nobody is offered it now
            return _Answer(None, None)
        table = env.table
        feasible = np.flatnonzero(table.feasible[:, 0])
        order = feasible[np.argsort(table.cost[feasible, 0], kind="stable")]
        top = candidates(live, order[:TOP_CANDIDATES], 0)
        action = int(self._fallback().act(env))
        if action == 0:
            return _Answer(None, None, top)
        driver, slot = divmod(action - 1, env.config.visible_slots)
        chosen = next((c for c in top if c.driver_id == live.driver_ids[driver]), None)
        if chosen is None:
            chosen = candidates(live, np.array([driver]), slot)[0]
        return _Answer(int(driver), None, top, chosen)

    # --- dispatch rounds ---------------------------------------------------------------------

    def dispatch_round(
        self, state: LiveState, budget: RequestBudget | None = None
    ) -> DispatchRound:
        """What the policy does now with the whole state: the learned policy's round, or the
        fallback's (shadow mode: the fallback's, with the learned one's beside it); once
        ``budget`` is spent it ends (``ended: "budget"``) with the assignments made."""
        started = time.perf_counter()
        self._count_travel(state)
        toggle = self.state
        served = self.models.served.champion  # read once: a swap never mixes two models
        answer, source, reason, shadow = _who_answers(
            toggle,
            None,  # a round is not split between the arms
            lambda: self._rl_round(state, served, budget),
            lambda: self._fallback_round(state, budget),
        )
        latency_s = time.perf_counter() - started
        self.stats.record_round(source, reason, latency_s)
        return DispatchRound(
            source=source,
            reason=reason,
            model_version=served.version,
            assignments=answer.assignments,
            waiting=answer.waiting,
            ended=answer.ended,
            latency_ms=latency_s * 1e3,
            shadow_assignments=shadow.assignments if shadow else None,
            shadow_reason=shadow.reason if shadow else None,
        )

    def _rl_round(
        self, state: LiveState, served: ModelSlot, budget: RequestBudget | None = None
    ) -> Round:
        """``served``'s round (the champion's: a round places many bookings at once, so the
        challenger, which answers a share of bookings, plays no rounds)."""
        model = served.model
        if model is None:
            return Round("model_load_failed" if served.path else "model_missing")
        config = self.rl_config(len(state.drivers), model=model)
        if config is None:
            return Round("fleet_too_large")
        live = live_env(state, self.day, config)
        player = self._player(model)
        try:
            with self._looking_ahead(player, budget):
                return play_round(live, player.act, budget)
        except ModelFailed as failure:
            return Round(failure.reason)
        except InvalidValues:
            return Round("invalid_action")
        except ScenarioError:
            return Round("stops_not_read")
        except Exception as error:  # noqa: BLE001 - a failing model must never fail a request
            self._model_failed(error)
            return Round("model_error")
        finally:
            self._release(model)

    def lookahead_status(self) -> dict[str, Any] | None:
        """The lookahead of answers: candidates, budget and the decisions whose budget ran
        out in this worker (None: answers do not look ahead)."""
        if self.lookahead is None:
            return None
        budget = self.lookahead.time_budget_s
        with self._state_lock:
            cut_short = self._cut_short
        return {
            "candidates": self.lookahead.candidates,
            "budget_ms": None if budget is None else budget * 1e3,
            "decisions_cut_short": cut_short,
        }

    def _count_travel(self, state: LiveState) -> None:
        if state.travel is None:
            return
        with self._state_lock:
            self._travel_counts["requests_with_travel"] += 1
            if state.travel != self.trained_travel():
                self._travel_counts["travel_differs_from_training"] += 1

    def trained_travel(self) -> TravelConfig:
        """The travel model the champion was trained with (its preset's; geneva's when it
        names none): read again after a swap."""
        return _preset_travel(self.model.preset if self.model else None)

    def travel_counts(self) -> dict[str, int]:
        """Requests of this worker that carried their own travel model, and those whose
        travel model differs from the one the champion was trained with."""
        with self._state_lock:
            return dict(self._travel_counts)

    def travel_status(self) -> dict[str, Any]:
        """The travel model a request without its own is played with, where it comes from,
        and the champion's training travel model."""
        return {
            "source": self.travel_source,
            "served": travel_to_dict(self.day.travel),
            "trained": travel_to_dict(self.trained_travel()),
            "trained_road_network": self.model.road_network if self.model else None,
            "road_network_differing": self.road_network_differing(),
            "requests": self.travel_counts(),
        }

    def road_network_differing(self) -> str | None:
        """How the road network requests travel on differs from the champion's training
        (None: the same, or no model)."""
        if self.model is None:
            return None
        return road_network_difference(self.model.road_network, self.day.travel.road_network)

    def reward_status(self) -> dict[str, Any]:
        """The reward weights answers are scored under, the champion's own, and which differ."""
        own = self.model.env_config.reward if self.model else None
        served = self.env_config.reward
        return {
            "source": "serve --reward" if self.reward is not None else "model",
            "served": reward_to_dict(served),
            "model": None if own is None else reward_to_dict(own),
            "differing": [] if own is None else differing_weights(own, served),
        }

    def _fallback_round(self, state: LiveState, budget: RequestBudget | None = None) -> Round:
        live = live_env(state, self.day, self.fallback_config(len(state.drivers)))
        return play_round(live, self._fallback().act, budget)

    # --- per-thread policy objects (small: no env, nothing sized by a request) -------------

    def _player(self, model: ServedModel | None = None) -> Any:
        """This thread's player of ``model`` (default: the champion), on its shared weights;
        kept for the last two models asked (a champion and a challenger)."""
        model = self.model if model is None else model
        cache: list[tuple[Any, Any]] = self._local.__dict__.setdefault("players", [])
        for cached_model, player in cache:
            if cached_model is model:
                return player
        player = model.new_player(self.lookahead)
        cache[:] = [*cache[-1:], (model, player)]
        return player

    def _release(self, model: ServedModel | None) -> None:
        """Have this thread's player of ``model`` drop what it keeps of the request's day
        (its feature builders' day, the lookahead's rollout env)."""
        if model is None:
            return
        cache: list[tuple[Any, Any]] = self._local.__dict__.get("players", [])
        for cached_model, player in cache:
            if cached_model is model and hasattr(player, "release"):
                player.release()

    def _fallback(self) -> Any:
        """The fallback policy of one answer. ``reopt`` keeps its plan between decisions, so
        each answer gets a new one (one request's plan never reaches another's answer, and
        threads share nothing); its seed 0 keeps the bookings in the request's order, as in
        ``evaluate``. The other baselines keep nothing sized by a request: one per thread."""
        if self.fallback_policy == "reopt":
            return ReoptPolicy(time_limit_s=self.fallback_time_limit_s)
        local = self._local
        if not hasattr(local, "fallback"):
            local.fallback = make_baseline(self.fallback_policy, seed=threading.get_ident() % 2**31)
        return local.fallback

    def _model_failed(self, error: Exception) -> None:
        self.stats.record_error()
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            logger.error("model failed, answering from the fallback: %r", error)
