"""A pairwise model file loaded for serving: one network for any fleet size.

A pairwise model (format ``rldispatch-pairwise``, see ``docs/pairwise.md``) scores each
(driver, booking) pair with shared weights, so it has no driver slots to outgrow: the service
plays it on a :class:`~rldispatch.env.DispatchEnv` with a driver slot per driver of the
request and the model's env config otherwise. It runs on NumPy
(:class:`~rldispatch.agents.pairwise.policy.PairwisePolicy`); there is no ONNX or PyTorch
runtime for it. :func:`load_pairwise_q_model` refuses a file that cannot serve with
:class:`~rldispatch.service.model.ModelLoadError`, among them a model whose probe decision on a
tiny live day does not answer finite Q-values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from rldispatch.agents.model_files import PAIRWISE_PRESET
from rldispatch.agents.pairwise.model_file import (
    LoadedPairwiseModel,
    PairwiseModelError,
    load_pairwise_model,
)
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.domain import Booking
from rldispatch.env import EnvConfig
from rldispatch.service.model import ModelLoadError, Runtime, driver_slots, env_config_from_dict
from rldispatch.service.snapshot import LiveDay, LiveDriver, LiveState, live_env

PAIRWISE_RUNTIMES = ("auto", "numpy")
"""Runtimes a pairwise model accepts (``auto`` means NumPy)."""


@dataclass(frozen=True)
class LoadedPairwiseQModel:
    """A pairwise model ready to serve.

    :param env_config: the env config of training; its ``max_drivers`` is not binding (see
        :meth:`env_config_for`).
    """

    model: LoadedPairwiseModel
    version: str
    preset: str
    env_config: EnvConfig
    path: Path
    runtime: Runtime = "numpy"
    kind: Literal["pairwise"] = "pairwise"

    def env_config_for(self, n_drivers: int) -> EnvConfig:
        """The model's env config with :func:`driver_slots` driver slots."""
        return replace(self.env_config, max_drivers=driver_slots(n_drivers))

    def policy(self) -> PairwisePolicy:
        """A new policy object on the shared weights (one per thread: it keeps buffers)."""
        return PairwisePolicy(self.model)


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


def load_pairwise_q_model(path: str | Path, runtime: str = "auto") -> LoadedPairwiseQModel:
    """Load a pairwise model file for serving (the caller checked its size).

    :param runtime: ``auto`` or ``numpy``; anything else is refused.
    """
    if runtime not in PAIRWISE_RUNTIMES:
        raise ModelLoadError(f"runtime: a pairwise model runs on numpy, not {runtime}")
    path = Path(path)
    try:
        loaded = load_pairwise_model(path)
    except PairwiseModelError as error:
        raise ModelLoadError(f"model: {error}") from error
    metadata = loaded.metadata
    served = LoadedPairwiseQModel(
        model=loaded,
        version=str(metadata.version),
        preset=PAIRWISE_PRESET,
        env_config=env_config_from_dict(metadata.env_config or {}),
        path=path,
    )
    _probe(served)
    return served
