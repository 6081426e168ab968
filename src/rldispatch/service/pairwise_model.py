"""A pairwise model file loaded for serving: one network for any fleet size.

A pairwise model (format ``rldispatch-pairwise``, see ``docs/pairwise.md``) scores each
(driver, booking) pair with shared weights, so it has no driver slots to outgrow: the service
plays it on a :class:`~rldispatch.env.DispatchEnv` with a driver slot per driver of the
request and the model's env config otherwise. It runs as
:class:`~rldispatch.agents.pairwise.policy.PairwisePolicy` with the network's forward pass on
NumPy, or on ONNX Runtime (an ``.onnx`` export, or ``--runtime onnx``: exported in memory at
start and checked against NumPy). :func:`load_pairwise_q_model` refuses a file that cannot
serve with :class:`~rldispatch.service.model.ModelLoadError`, among them a model whose probe
decision on a tiny live day does not answer finite Q-values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rldispatch.agents.pairwise.lookahead import LookaheadExpert
from rldispatch.agents.pairwise.model_file import (
    LoadedPairwiseModel,
    PairwiseMetadata,
    PairwiseModelError,
    load_pairwise_model,
)
from rldispatch.agents.pairwise.onnx_export import (
    OnnxPairQ,
    export_pairwise_onnx_bytes,
    read_pairwise_onnx_metadata,
)
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.domain import Booking
from rldispatch.env import EnvConfig
from rldispatch.service.config import Lookahead
from rldispatch.service.model import (
    ModelLoadError,
    Runtime,
    driver_slots,
    env_config_from_dict,
    pairwise_booking_slots,
)
from rldispatch.service.snapshot import LiveDay, LiveDriver, LiveState, live_env

PAIRWISE_RUNTIMES = ("auto", "numpy", "onnx")
"""Runtimes a pairwise model accepts (``auto``: NumPy for a model file, ONNX Runtime for an
``.onnx`` export)."""


@dataclass(frozen=True)
class LoadedPairwiseQModel:
    """A pairwise model ready to serve.

    :param env_config: the env config of training; its ``max_drivers`` is not binding (see
        :meth:`env_config_for`).
    :param model: the network (NumPy runtime); None for an ``.onnx`` export.
    :param scorer: the forward pass on ONNX Runtime (``onnx`` runtime), shared by threads.
    """

    metadata: PairwiseMetadata
    version: str
    preset: str
    env_config: EnvConfig
    path: Path
    runtime: Runtime = "numpy"
    model: LoadedPairwiseModel | None = None
    scorer: OnnxPairQ | None = None
    kind: Literal["pairwise"] = "pairwise"

    def env_config_for(self, n_drivers: int) -> EnvConfig:
        """The model's env config with :func:`driver_slots` driver slots."""
        return replace(self.env_config, max_drivers=driver_slots(n_drivers))

    def policy(self) -> PairwisePolicy:
        """A new policy object on the shared weights (one per thread: it keeps buffers)."""
        if self.scorer is not None:
            return PairwisePolicy.from_scorer(self.scorer, self.metadata)
        return PairwisePolicy(self.model)

    @property
    def max_drivers(self) -> int | None:
        """None: it plays any fleet."""
        return None

    def serving_config(self, n_drivers: int, n_bookings: int | None = None) -> EnvConfig:
        """Its training config with a driver slot per driver (as ``evaluate`` plays it) and,
        for a one-booking question of ``n_bookings`` open bookings, a booking slot for each
        (see :func:`pairwise_booking_slots`)."""
        config = replace(self.env_config, max_drivers=max(n_drivers, 1))
        if n_bookings is not None:
            slots = pairwise_booking_slots(self.env_config.visible_slots, n_bookings)
            config = replace(config, visible_slots=slots)
        return config

    def new_player(self, lookahead: Lookahead | None = None) -> PairwisePlayer:
        """A player on the shared weights; with ``lookahead`` its actions (a round's) are the
        lookahead expert's on this network."""
        policy = self.policy()
        expert = None
        if lookahead is not None:
            expert = LookaheadExpert(
                policy.q_function,
                lookahead.candidates,
                self.metadata.candidates_per_booking,
                lookahead.time_budget_s,
            )
        return PairwisePlayer(policy, expert)


class PairwisePlayer:
    """A pairwise model deciding on a live env: its values for one booking, or its action;
    with a lookahead expert, the booking's driver and the action are the expert's."""

    def __init__(self, policy: PairwisePolicy, lookahead: LookaheadExpert | None = None) -> None:
        self.policy = policy
        self.lookahead = lookahead

    def release(self) -> None:
        """Drop what its builders and lookahead keep of the last request's day."""
        self.policy.features.forget()
        if self.lookahead is not None:
            self.lookahead.release()

    def slot_values(self, env: Any, slot: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The candidate drivers of the booking in ``slot``, best first (ties by id), their
        values and the value of waiting."""
        state = self.policy.state(env)
        wait_q, q_pairs = self.policy.q_function(state)
        mine = np.flatnonzero(state.pair_slot == slot)
        order = mine[np.lexsort((state.pair_order[mine], -q_pairs[mine]))]
        drivers = state.pair_driver[order].astype(np.int64)
        return drivers, np.asarray(q_pairs[order], dtype=np.float64), float(wait_q)

    def slot_pick(self, env: Any, slot: int, drivers: np.ndarray) -> int:
        """Which of ``drivers`` (the booking's candidates, best first) the lookahead takes:
        the index of the one whose rollout ends best among the first ``candidates``; 0
        without a lookahead or when no rollout ran to its end."""
        expert = self.lookahead
        if expert is None or drivers.size <= 1:
            return 0
        state = self.policy.state(env)
        mine = np.flatnonzero(state.pair_slot == slot)
        pair_of = {int(state.pair_driver[p]): int(p) for p in mine}
        looked = [pair_of[int(d)] for d in drivers[: expert.candidates]]
        rewards = expert.rollout_rewards(env, state, np.array(looked, dtype=np.int64))
        return int(np.argmax(rewards)) if rewards.size else 0

    def act(self, env: Any) -> int:
        if self.lookahead is None:
            return self.policy.act(env)
        state = self.policy.state(env)
        return state.action(self.lookahead.choose(env, state))


def _probe_state(day: LiveDay) -> LiveState:
    """A tiny live day in Geneva: one booking, two drivers near it, at the service day's start."""
    booking = Booking("probe", 0.0, (46.2044, 6.1432), (46.1935, 6.149), 10.0, (0.0, 40.0))
    drivers = (
        LiveDriver("probe-1", (46.21, 6.112), 0.0, (0.0, 300.0)),
        LiveDriver("probe-2", (46.189, 6.165), 5.0, (0.0, 300.0)),
    )
    return LiveState(drivers, (booking,), minute_of_day=day.start_min)


def _probe(served: LoadedPairwiseQModel) -> None:
    """One decision on a tiny live day must answer finite Q-values."""
    day = LiveDay.from_preset(served.preset)
    state = _probe_state(day)
    try:
        live = live_env(state, day, served.env_config_for(len(state.drivers)))
        scores = served.policy().scores(live.env)
    except Exception as error:  # noqa: BLE001 - any failure means the model cannot serve
        raise ModelLoadError(f"model: a probe decision failed: {error}") from error
    values = np.array([scores.wait_q, *(pair.q_value for pair in scores.pairs)])
    if not np.all(np.isfinite(values)):
        raise ModelLoadError("model: a probe decision answered Q-values that are not finite")


MAX_ONNX_DIFF = 1e-4
"""An in-memory export whose values differ from NumPy's by more than this is refused."""


def load_pairwise_q_model(path: str | Path, runtime: str = "auto") -> LoadedPairwiseQModel:
    """Load a pairwise model file, or its ``.onnx`` export, for serving (the caller checked
    its size).

    :param runtime: ``auto``, ``numpy`` (model files) or ``onnx``; ``torch`` is refused.
    """
    if runtime not in PAIRWISE_RUNTIMES:
        raise ModelLoadError(f"runtime: a pairwise model runs on numpy or onnx, not {runtime}")
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if runtime == "numpy":
            raise ModelLoadError("runtime: an .onnx file runs on ONNX Runtime, not numpy")
        served = _onnx_export(path)
    else:
        try:
            loaded = load_pairwise_model(path)
        except PairwiseModelError as error:
            raise ModelLoadError(f"model: {error}") from error
        served = _served(loaded.metadata, path, model=loaded)
        if runtime == "onnx":
            scorer = OnnxPairQ(export_pairwise_onnx_bytes(loaded.network, loaded.metadata))
            served = replace(served, runtime="onnx", scorer=scorer)
            _check_against_numpy(served, loaded)
    _probe(served)
    return served


def _served(
    metadata: PairwiseMetadata, path: Path, model: LoadedPairwiseModel | None = None
) -> LoadedPairwiseQModel:
    return LoadedPairwiseQModel(
        metadata=metadata,
        version=str(metadata.version),
        preset=metadata.preset,
        env_config=env_config_from_dict(metadata.env_config or {}),
        path=path,
        model=model,
    )


def _onnx_export(path: Path) -> LoadedPairwiseQModel:
    model_bytes = path.read_bytes()
    try:
        metadata = read_pairwise_onnx_metadata(model_bytes)
        scorer = OnnxPairQ(model_bytes)
    except Exception as error:  # noqa: BLE001 - ORT and protobuf raise their own types
        raise ModelLoadError(f"model: ONNX Runtime cannot load {path}: {error}") from error
    if metadata is None:
        raise ModelLoadError(f"model: {path} is not a pairwise model's ONNX export")
    return replace(_served(metadata, path), runtime="onnx", scorer=scorer)


def _check_against_numpy(served: LoadedPairwiseQModel, loaded: LoadedPairwiseModel) -> None:
    """The ONNX scorer must give the NumPy forward pass's values on the probe state."""
    day = LiveDay.from_preset(served.preset)
    state = _probe_state(day)
    env = live_env(state, day, served.env_config_for(len(state.drivers))).env
    features = PairwisePolicy(loaded).state(env)
    wait_np, pairs_np = PairwisePolicy(loaded).q_function(features)
    wait_ort, pairs_ort = served.scorer(features)
    difference = max(abs(wait_np - wait_ort), float(np.max(np.abs(pairs_np - pairs_ort))))
    if not difference <= MAX_ONNX_DIFF:
        raise ModelLoadError(f"onnx: values differ from NumPy by {difference:.3g}")
