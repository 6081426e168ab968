"""What a served model is, whatever its kind: the interface the service plays it through.

A kind's :meth:`~rldispatch.agents.kinds.AgentKind.load_served` turns a model file (or its
ONNX export) into a :class:`ServedModel`: it says which env config it plays a request's
fleet on (``serving_config``) and makes a :class:`Player` per thread, which answers the
service's two questions on a live env: the candidate drivers of one booking with their
values (``slot_values``, and ``slot_pick`` among them), and the action of a dispatch round
(``act``). The service builds the env of each request and never asks what kind it plays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rldispatch.agents.model_container import env_config_from_dict
from rldispatch.env import DispatchEnv, EnvConfig

RUNTIMES = ("auto", "numpy", "torch", "onnx")
"""Every runtime a kind may serve on (each kind names its own: ``serving_runtimes``)."""
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""Model files above this size are refused before being read."""

ProbeDay = Callable[[str | None, EnvConfig], DispatchEnv]
"""A tiny live day of a preset's area (two drivers, one booking, at the start of the service
day) on an env config, as the service builds a request's env: what a kind may probe a model
with before it serves."""


def trained_road_network(training_summary: Mapping[str, Any] | None) -> str | None:
    """The road network file a model was trained on, as its training summary names it (None:
    the travel formula)."""
    named = (training_summary or {}).get("road_network")
    return None if named is None else str(named)


def road_network_difference(
    trained: str | None, played: str | None | Sequence[str | None]
) -> str | None:
    """One line saying how the travel a model plays differs from its training's (None: the
    same). A road network is known by its file name: the path it was trained at may lie on
    another machine."""
    networks = [played] if played is None or isinstance(played, str) else list(played)
    names = sorted({_travel_name(network) for network in networks})
    wanted = _travel_name(trained)
    if names == [wanted]:
        return None
    return f"trained on {wanted}, played on {' and '.join(names)}"


def _travel_name(road_network: str | None) -> str:
    if road_network is None:
        return "the travel formula"
    return f"the road network {Path(road_network).name}"


class ModelLoadError(ValueError):
    """A model file that cannot be served: missing, too large, foreign or inconsistent."""


class InvalidValues(ValueError):
    """A model answered values that cannot be used (not finite)."""


@dataclass(frozen=True)
class Lookahead:
    """How a model's answers look ahead (``serve --lookahead``): the candidates each decision
    plays on in copies of the live day, and the wall-clock budget of one decision (None:
    none). A kind that cannot look ahead ignores it."""

    candidates: int
    time_budget_s: float | None

    def __post_init__(self) -> None:
        if self.candidates < 1:
            raise ValueError(f"lookahead: must be at least 1 candidate, got {self.candidates!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(
                f"lookahead budget: must be positive or None, got {self.time_budget_s!r}"
            )


class Player(Protocol):
    """A served model deciding on a live env; one per thread (it may keep buffers)."""

    def slot_values(self, env: Any, slot: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The drivers who may take the booking in ``slot``, best first, their values and the
        value of waiting."""
        ...

    def slot_pick(self, env: Any, slot: int, drivers: np.ndarray) -> int:
        """Which of ``drivers`` (from :meth:`slot_values`) answers: an index into it."""
        ...

    def act(self, env: Any) -> int:
        """The env action a dispatch round takes now (as ``evaluate`` plays it).

        :raises InvalidValues: the values of the allowed actions are not finite.
        """
        ...


class ServedModel(Protocol):
    """A model file loaded for serving, of any kind, on one runtime."""

    kind: str
    version: str
    preset: str | None
    env_config: EnvConfig
    path: Path
    runtime: str
    can_look_ahead: bool
    """Whether its players take a :class:`Lookahead` (the others ignore it)."""
    road_network: str | None
    """The road network file it was trained on (None: the travel formula)."""

    @property
    def max_drivers(self) -> int | None:
        """The largest fleet it plays (None: any)."""
        ...

    def serving_config(self, n_drivers: int, n_bookings: int | None = None) -> EnvConfig | None:
        """The env config to play a fleet of ``n_drivers`` on (None: it cannot); for a
        one-booking question, ``n_bookings`` is the number of open bookings."""
        ...

    def new_player(self, lookahead: Lookahead | None = None) -> Player:
        """A player on the shared weights; ``lookahead`` where the kind can look ahead."""
        ...


def check_file_size(path: Path, max_bytes: int = MAX_MODEL_BYTES) -> int:
    """The file's size; :class:`ModelLoadError` when it is missing, empty or too large."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ModelLoadError(f"model: no file at {path}") from error
    except OSError as error:
        raise ModelLoadError(f"model: cannot read {path}: {error.strerror}") from error
    if not path.is_file():
        raise ModelLoadError(f"model: {path} is not a file")
    if size == 0:
        raise ModelLoadError(f"model: {path} is empty")
    if size > max_bytes:
        raise ModelLoadError(f"model: {path} has {size} bytes, more than the limit {max_bytes}")
    return size


def check_runtime(kind: str, runtime: str, runtimes: tuple[str, ...]) -> None:
    """:class:`ModelLoadError` unless ``runtime`` is one ``kind`` serves on."""
    if runtime not in runtimes:
        named = [name for name in runtimes if name != "auto"]
        raise ModelLoadError(f"runtime: a {kind} model runs on {' or '.join(named)}, not {runtime}")


def driver_slots(n_drivers: int) -> int:
    """Driver slots of an env playing ``n_drivers`` beyond a model's own: the next power of two
    (a few envs per thread at most, whatever the fleet sizes requests bring)."""
    return 1 << (max(int(n_drivers), 1) - 1).bit_length()


def served_env_config(data: Mapping[str, Any]) -> EnvConfig:
    """An :class:`EnvConfig` from its dict form in model metadata (:class:`ModelLoadError`
    naming ``env_config`` when it is not one)."""
    if not isinstance(data, Mapping):
        raise ModelLoadError("env_config: must be an object")
    try:
        return env_config_from_dict(dict(data))
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"env_config: {error}") from error
