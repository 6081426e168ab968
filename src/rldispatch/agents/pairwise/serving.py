"""A pairwise model file loaded for serving: one network for any fleet size.

A pairwise model (format ``rldispatch-pairwise``, see ``docs/pairwise.md``) scores each
(driver, booking) pair with shared weights, so it has no driver slots to outgrow: the service
plays it on a :class:`~rldispatch.env.DispatchEnv` with a driver slot per driver of the
request and the model's env config otherwise. It runs as
:class:`~rldispatch.agents.pairwise.policy.PairwisePolicy` with the network's forward pass on
NumPy, or on ONNX Runtime (an ``.onnx`` export, or ``--runtime onnx``: exported in memory at
start and checked against NumPy). :func:`load_pairwise_q_model` refuses a file that cannot
serve with :class:`~rldispatch.agents.serving.ModelLoadError`, among them a model whose probe
decision on a tiny live day does not answer finite Q-values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from rldispatch.agents.serving import (
    Lookahead,
    ModelLoadError,
    ProbeDay,
    check_runtime,
    driver_slots,
    served_env_config,
    trained_road_network,
)
from rldispatch.env import EnvConfig

PAIRWISE_RUNTIMES = ("auto", "numpy", "onnx")
"""Runtimes a pairwise model accepts (``auto``: NumPy for a model file, ONNX Runtime for an
``.onnx`` export)."""
MAX_PAIRWISE_BOOKING_SLOTS = 64
"""Booking slots a pairwise model is served with at most (its candidates grow with them)."""


def pairwise_booking_slots(model_slots: int, n_bookings: int) -> int:
    """Booking slots to serve a pairwise model a request of ``n_bookings`` open bookings: all
    of them when they fit in :data:`MAX_PAIRWISE_BOOKING_SLOTS` (a power of two, at least the
    model's own), so the booking asked about is always among the visible ones."""
    if n_bookings <= model_slots:
        return model_slots
    return max(model_slots, min(driver_slots(n_bookings), MAX_PAIRWISE_BOOKING_SLOTS))


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
    runtime: str = "numpy"
    model: LoadedPairwiseModel | None = None
    scorer: OnnxPairQ | None = None
    kind: str = "pairwise"
    can_look_ahead: bool = True

    @property
    def road_network(self) -> str | None:
        """The road network file it was trained on (None: the travel formula)."""
        return trained_road_network(self.metadata.training_summary)

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
        if n_bookings is None:
            return replace(self.env_config, max_drivers=max(n_drivers, 1))
        slots = pairwise_booking_slots(self.env_config.visible_slots, n_bookings)
        return replace(self.env_config, max_drivers=max(n_drivers, 1), visible_slots=slots)

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


PROBE_DRIVERS = 2
"""Drivers of the tiny live day a model is probed on."""


def _probe(served: LoadedPairwiseQModel, probe_day: ProbeDay) -> None:
    """One decision on a tiny live day must answer finite Q-values."""
    try:
        env = probe_day(served.preset, served.env_config_for(PROBE_DRIVERS))
        scores = served.policy().scores(env)
    except Exception as error:  # noqa: BLE001 - any failure means the model cannot serve
        raise ModelLoadError(f"model: a probe decision failed: {error}") from error
    values = np.array([scores.wait_q, *(pair.q_value for pair in scores.pairs)])
    if not np.all(np.isfinite(values)):
        raise ModelLoadError("model: a probe decision answered Q-values that are not finite")


MAX_ONNX_DIFF = 1e-4
"""An in-memory export whose values differ from NumPy's by more than this is refused."""


def load_pairwise_q_model(
    path: str | Path, runtime: str, probe_day: ProbeDay
) -> LoadedPairwiseQModel:
    """Load a pairwise model file, or its ``.onnx`` export, for serving (the caller checked
    its size), probed with one decision on ``probe_day``.

    :param runtime: ``auto``, ``numpy`` (model files) or ``onnx``; ``torch`` is refused.
    """
    check_runtime("pairwise", runtime, PAIRWISE_RUNTIMES)
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
            _check_against_numpy(served, loaded, probe_day)
    _probe(served, probe_day)
    return served


def _served(
    metadata: PairwiseMetadata, path: Path, model: LoadedPairwiseModel | None = None
) -> LoadedPairwiseQModel:
    return LoadedPairwiseQModel(
        metadata=metadata,
        version=str(metadata.version),
        preset=metadata.preset,
        env_config=served_env_config(metadata.env_config or {}),
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


def _check_against_numpy(
    served: LoadedPairwiseQModel, loaded: LoadedPairwiseModel, probe_day: ProbeDay
) -> None:
    """The ONNX scorer must give the NumPy forward pass's values on the probe state."""
    env = probe_day(served.preset, served.env_config_for(PROBE_DRIVERS))
    features = PairwisePolicy(loaded).state(env)
    wait_np, pairs_np = PairwisePolicy(loaded).q_function(features)
    wait_ort, pairs_ort = served.scorer(features)
    difference = max(abs(wait_np - wait_ort), float(np.max(np.abs(pairs_np - pairs_ort))))
    if not difference <= MAX_ONNX_DIFF:
        raise ModelLoadError(f"onnx: values differ from NumPy by {difference:.3g}")
