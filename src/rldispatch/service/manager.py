"""``RLDispatchManager``: the learned policy behind a heuristic safety net.

For each booking the manager decides who answers, in this order (the first that applies is
the fallback reason; see ``docs/service.md``):

==========================  ===============================================================
reason                      when
==========================  ===============================================================
``shadow_mode``             shadow mode: the RL answer is computed and logged, not served
``rl_disabled``             an admin has switched RL off
``ab_heuristic_arm``        the booking's id hashes into the heuristic arm of the A/B split
``model_missing``           the service was started without a model
``model_load_failed``       the model file is missing, broken, foreign or inconsistent
``fleet_too_large``         more drivers than the model has driver slots (flat models only)
``booking_not_visible``     the booking is not among the model's visible booking slots
``no_feasible_driver``      no driver can serve the booking in time
``model_error``             the model raised or answered the wrong shape (also an error)
``invalid_action``          the model's Q-values for the allowed actions are not finite
``rl_waited``               the model's best allowed action was to wait
==========================  ===============================================================

The RL answer of a flat (DQN) model is the masked greedy action restricted to the booking's
slot (and wait), mapped back to a driver id. A pairwise model plays any fleet: it scores the
booking's candidate pairs on a ``DispatchEnv`` reset with the live snapshot (every open
booking, enough driver slots for the fleet) and answers its best pair unless waiting scores
higher. The heuristic (``insertion`` by default) runs on the booking alone, through
the same policy object ``simulate`` and ``evaluate`` use. Everything here is safe to call from
several threads.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rldispatch.domain import Booking, Driver
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import BASELINES, make_baseline
from rldispatch.service.ab import Arm, ToggleState, assign_arm
from rldispatch.service.model import (
    MAX_MODEL_BYTES,
    LoadedQModel,
    driver_slots,
    finite_or_none,
    pairwise_booking_slots,
)
from rldispatch.service.model_holder import ModelHolder, ModelSlot, slot_status
from rldispatch.service.snapshot import LiveDay, LiveRequest, LiveSnapshot, snapshot_scenario
from rldispatch.service.stats import StatsSnapshot, SuggestionStats

if TYPE_CHECKING:  # both import PyTorch: loaded only with a pairwise model
    from rldispatch.agents.pairwise.policy import PairwisePolicy
    from rldispatch.service.pairwise_model import LoadedPairwiseQModel

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
    "model_error",
    "invalid_action",
    "rl_waited",
)
TOP_CANDIDATES = 5
ERROR_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class Candidate:
    """A driver that can serve the booking, with the scores behind the choice.

    ``q_value`` is the model's value of giving the booking to this driver (RL answers);
    ``insertion_cost`` is the heuristic's cost (km plus 2 km per minute late);
    ``pickup_in_min`` the estimated pickup time, in minutes from now.
    """

    driver_id: str
    q_value: float | None
    insertion_cost: float | None
    pickup_in_min: float | None
    added_km: float | None


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
    shadow_driver_id: str | None = None
    shadow_reason: str | None = None


@dataclass(frozen=True)
class _Answer:
    """One answerer's choice: a driver index (or None), with its candidates; for the learned
    policy, the fallback reason when it has no answer."""

    driver: int | None
    reason: str | None
    candidates: tuple[Candidate, ...] = ()


class RLDispatchManager:
    """Loads a model, turns live bookings and drivers into its state, suggests, falls back.

    :param model_path: flat DQN model file (or its ``.onnx`` export) or pairwise model file;
        None serves the fallback only.
    :param runtime: ``auto``, ``numpy``, ``torch`` or ``onnx`` (see :func:`load_q_model`; a
        pairwise model runs on ``numpy`` only).
    :param fallback_policy: the baseline answering when RL does not (``insertion``).
    :param state: the initial toggle state (RL off by default).
    :param day: travel model and clock of the service day (default: the model's preset).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        runtime: str = "auto",
        fallback_policy: str = "insertion",
        state: ToggleState | None = None,
        day: LiveDay | None = None,
        max_model_bytes: int = MAX_MODEL_BYTES,
        models_dir: Path | None = None,
    ) -> None:
        if fallback_policy not in BASELINES:
            raise ValueError(
                f"fallback_policy: unknown policy {fallback_policy!r}; "
                f"choose one of {sorted(BASELINES)}"
            )
        self.fallback_policy = fallback_policy
        self.models = ModelHolder(runtime, models_dir=models_dir, max_model_bytes=max_model_bytes)
        self.models.start_with(Path(model_path) if model_path is not None else None)
        self.env_config = self.model.env_config if self.model else EnvConfig()
        self.day = day or LiveDay.from_preset(self.model.preset if self.model else None)
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
    def model(self) -> LoadedQModel | LoadedPairwiseQModel | None:
        """The champion model (None: none loaded)."""
        return self.models.served.champion.model

    @model.setter
    def model(self, model: LoadedQModel | LoadedPairwiseQModel) -> None:
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

    # --- suggestions -------------------------------------------------------------------------

    def suggest(self, request: LiveRequest) -> Suggestion:
        """The driver for ``request.booking``: the learned policy's, or the heuristic's."""
        started = time.perf_counter()
        state = self.state
        experiment = state.enabled and not state.shadow
        arm = assign_arm(request.booking.id, state.ab_ratio) if experiment else None
        rl: _Answer | None = None
        reason: str | None
        served = self.models.for_booking(request.booking.id)
        if state.shadow:
            reason = "shadow_mode"
            rl = self._rl_answer(request, served)
        elif not state.enabled:
            reason = "rl_disabled"
        elif arm == "heuristic":
            reason = "ab_heuristic_arm"
        else:
            rl = self._rl_answer(request, served)
            reason = rl.reason
        drivers = request.drivers
        if reason is None and rl is not None:
            answer, source = rl, "rl"
        else:
            answer, source = self._heuristic_answer(request), "fallback"
        latency_s = time.perf_counter() - started
        self.stats.record(source, reason, arm, latency_s)
        shadow = rl if state.shadow else None
        return Suggestion(
            booking_id=request.booking.id,
            driver_id=None if answer.driver is None else drivers[answer.driver].id,
            source=source,
            reason=reason,
            model_version=served.version if arm == "rl" or state.shadow else self.model_version,
            arm=arm,
            candidates=answer.candidates,
            latency_ms=latency_s * 1e3,
            shadow_driver_id=(
                drivers[shadow.driver].id if shadow and shadow.driver is not None else None
            ),
            shadow_reason=shadow.reason if shadow else None,
        )

    def warm_up(self) -> None:
        """Run both answerers once on a tiny request (compiled kernels load, caches fill)."""
        booking = Booking("warm-up", 0.0, (0.0, 0.0), (0.01, 0.01), 10.0, (0.0, 30.0))
        drivers = (Driver("warm-up", (0.001, 0.001), (0.0, 120.0)),)
        request = LiveRequest(booking, drivers, minute_of_day=self.day.travel.start_hour * 60.0)
        self._rl_answer(request)
        self._heuristic_answer(request)

    def _rl_answer(self, request: LiveRequest, served: ModelSlot | None = None) -> _Answer:
        """The learned answer of ``served`` (default: the champion)."""
        served = served or self.models.served.champion
        model = served.model
        if model is None:
            return _Answer(None, "model_load_failed" if served.path else "model_missing")
        if model.kind == "pairwise":
            return self._pairwise_answer(request, model)
        config = model.env_config
        if len(request.drivers) > config.max_drivers:
            return _Answer(None, "fleet_too_large")
        snapshot = LiveSnapshot(request, self.day, config)
        if snapshot.booking_slot < 0:
            return _Answer(None, "booking_not_visible")
        feasible = np.flatnonzero(snapshot.booking_feasible())
        if feasible.size == 0:
            return _Answer(None, "no_feasible_driver")
        try:
            q = np.asarray(model.q_function.q_values(snapshot.observation()[None, :]))
            if q.shape != (1, config.n_actions):
                raise ValueError(f"Q-values of shape {q.shape}, expected one row per action")
        except Exception as error:  # noqa: BLE001 - a failing model must never fail a request
            self.stats.record_error()
            self._log_model_error(error)
            return _Answer(None, "model_error")
        actions = snapshot.booking_actions()[feasible]
        values = q[0, np.concatenate([[0], actions])]
        if not np.all(np.isfinite(values)):
            return _Answer(None, "invalid_action")
        slot = snapshot.booking_slot
        order = feasible[np.argsort(-values[1:], kind="stable")][:TOP_CANDIDATES]
        candidates = tuple(
            Candidate(
                driver_id=request.drivers[i].id,
                q_value=float(q[0, 1 + i * config.visible_slots + slot]),
                insertion_cost=finite_or_none(snapshot.cost[i, slot]),
                pickup_in_min=finite_or_none(snapshot.pickup_min[i, slot]),
                added_km=finite_or_none(snapshot.added_km[i, slot]),
            )
            for i in order
        )
        best = int(np.argmax(values))
        if best == 0:
            return _Answer(None, "rl_waited", candidates)
        return _Answer(int(feasible[best - 1]), None, candidates)

    def _pairwise_answer(self, request: LiveRequest, model: LoadedPairwiseQModel) -> _Answer:
        """The pairwise model's best pair for the booking, on this thread's env of the fleet's
        size reset with the live snapshot (every open booking, the booking first)."""
        scenario = snapshot_scenario(request, self.day)
        booking_slots = pairwise_booking_slots(
            model.env_config.visible_slots, len(scenario.bookings)
        )
        env = self._env(driver_slots(len(request.drivers)), booking_slots, model.env_config)
        env.reset(options={"scenario": scenario})
        if request.rides_today is not None:  # the snapshot's drivers start the day afresh
            env.sim.rides[: len(request.drivers)] = request.rides_today
        slots = np.flatnonzero(env.visible == 0)
        if slots.size == 0:
            return _Answer(None, "booking_not_visible")
        slot = int(slots[0])
        if not env.table.feasible[:, slot].any():
            return _Answer(None, "no_feasible_driver")
        try:
            time_of_day = self.day.time_of_day_fraction(request.minute_of_day)
            scores = self._pairwise_policy(model).scores(env, time_of_day)
        except Exception as error:  # noqa: BLE001 - a failing model must never fail a request
            self.stats.record_error()
            self._log_model_error(error)
            return _Answer(None, "model_error")
        pairs = scores.for_slot(slot)
        values = np.array([scores.wait_q, *(pair.q_value for pair in pairs)], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            return _Answer(None, "invalid_action")
        candidates = tuple(
            Candidate(
                driver_id=request.drivers[pair.driver].id,
                q_value=float(pair.q_value),
                insertion_cost=finite_or_none(pair.insertion_cost),
                pickup_in_min=finite_or_none(pair.pickup_min),
                added_km=finite_or_none(pair.added_km),
            )
            for pair in pairs[:TOP_CANDIDATES]
        )
        if not pairs or scores.wait_q > pairs[0].q_value:
            return _Answer(None, "rl_waited", candidates)
        return _Answer(pairs[0].driver, None, candidates)

    def _heuristic_answer(self, request: LiveRequest) -> _Answer:
        """The fallback policy on an env holding the fleet and this booking alone."""
        env, policy = self._fallback_env(len(request.drivers))
        scenario = snapshot_scenario(request, self.day, bookings=(request.booking,))
        env.reset(options={"scenario": scenario})
        slots = np.flatnonzero(env.visible == 0)
        if slots.size == 0:  # nobody can serve it: the env ran the day out
            return _Answer(None, None)
        slot = int(slots[0])
        table = env.table
        feasible = np.flatnonzero(table.feasible[:, slot])
        order = feasible[np.argsort(table.cost[feasible, slot], kind="stable")][:TOP_CANDIDATES]
        candidates = tuple(
            Candidate(
                driver_id=request.drivers[i].id,
                q_value=None,
                insertion_cost=finite_or_none(table.cost[i, slot]),
                pickup_in_min=finite_or_none(table.pickup_min[i, slot]),
                added_km=finite_or_none(table.added_km[i, slot]),
            )
            for i in order
        )
        action = int(policy.act(env))
        if action == 0:
            return _Answer(None, None, candidates)
        driver, chosen_slot = divmod(action - 1, env.config.visible_slots)
        if chosen_slot != slot:
            return _Answer(None, None, candidates)
        return _Answer(int(driver), None, candidates)

    def _pairwise_policy(self, model: LoadedPairwiseQModel) -> PairwisePolicy:
        """This thread's policy object on ``model``'s shared weights."""
        local = self._local
        cached = local.__dict__.get("pairwise")
        if cached is None or cached[0] is not model:
            cached = local.pairwise = (model, model.policy())
        return cached[1]

    def _env(
        self, max_drivers: int, visible_slots: int | None = None, base: EnvConfig | None = None
    ) -> DispatchEnv:
        """This thread's env with ``max_drivers`` driver slots and ``visible_slots`` booking
        slots (default: the model's), on the env config ``base`` (default: the service's),
        built on first use; every caller resets it before reading it."""
        base = base or self.env_config
        slots = visible_slots or base.visible_slots
        config = replace(base, max_drivers=max_drivers, visible_slots=slots)
        envs: dict[EnvConfig, DispatchEnv] = self._local.__dict__.setdefault("envs", {})
        env = envs.get(config)
        if env is None:
            env = envs[config] = DispatchEnv(preset="geneva", config=config)
        return env

    def _fallback_env(self, n_drivers: int) -> tuple[DispatchEnv, Any]:
        """This thread's env (with enough driver slots) and fallback policy object.

        Slots beyond the model's round up to a power of two: a few envs per thread at most.
        """
        local = self._local
        max_drivers = self.env_config.max_drivers
        if n_drivers > max_drivers:
            max_drivers = driver_slots(n_drivers)
        env = self._env(max_drivers)
        if not hasattr(local, "policy"):
            local.policy = make_baseline(self.fallback_policy, seed=threading.get_ident() % 2**31)
        return env, local.policy

    def _log_model_error(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            logger.error("model failed, answering from the fallback: %r", error)
