"""The one interface every learned agent kind implements, and the registry of kinds by name.

A kind (``pairwise``: one network for any fleet; ``dqn``: the flat network of one fleet
shape; any added later) provides its config type, a new learner for the training loop, its
model file (save, load, refuse a foreign or broken file in one line), its policy and the
scores of candidate drivers for a booking, its tuner search space, how the service serves
its model files (:meth:`AgentKind.load_served`, on the runtimes it names) and, optionally,
its ONNX export (:meth:`AgentKind.export_onnx`; a kind without one is refused in one line).
The CLI, evaluation, ``compare``, the tuner, ``export-onnx`` and the service talk to this
interface only.

**Registering a kind.** A kind is one package plus one entry point in the group
:data:`ENTRY_POINT_GROUP` naming its :class:`AgentKind` instance, in ``pyproject.toml``::

    [project.entry-points."rldispatch.agent_kinds"]
    pairwise = "rldispatch.agents.pairwise.kind:KIND"

(the package is reinstalled to see a new entry point: ``make`` does it when
``pyproject.toml`` changes). :func:`register_kind` adds one at run time (a test's kind).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rldispatch.agents.config_fields import HyperparameterConfig
from rldispatch.agents.serving import (
    ModelLoadError,
    ProbeDay,
    ServedModel,
    trained_road_network,
)
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.base import Policy

if TYPE_CHECKING:
    from rldispatch.agents.search_space import Hyperparameter

ENTRY_POINT_GROUP = "rldispatch.agent_kinds"
"""The entry point group kinds are registered in (each names an :class:`AgentKind`)."""
DEFAULT_KIND = "pairwise"
"""The kind that ships: what ``train``, ``tune`` and ``quickstart`` use by default."""


@dataclass(frozen=True)
class CandidateScore:
    """A driver's score for a booking, as a learned policy rates it, with its parts.

    :param driver: driver index in the env.
    :param score: the policy's score (its Q-value).
    :param parts: what the score is made of where the kind can tell (e.g. km added,
        lateness caused, the learned value); empty otherwise.
    """

    driver: int
    score: float
    parts: dict[str, float] = field(default_factory=dict)


class LearnedPolicy(Policy, ABC):
    """A learned kind's greedy policy: an env action, and its scores of the drivers."""

    name: str

    @abstractmethod
    def act(self, env: DispatchEnv) -> int: ...

    @abstractmethod
    def candidate_scores(self, env: DispatchEnv, slot: int) -> list[CandidateScore]:
        """The drivers the policy would consider for the booking in visible ``slot``, best
        first."""


@dataclass(frozen=True)
class LearnedModel:
    """A model file ready to play: its kind, policy and what it was trained on.

    :param env_config: the env it was trained with (see :meth:`env_config_for`).
    """

    kind: str
    policy: LearnedPolicy
    env_config: EnvConfig
    preset: str | None
    version: str
    path: Path
    training_summary: dict[str, Any]

    @property
    def road_network(self) -> str | None:
        """The road network file it was trained on (None: the travel formula)."""
        return trained_road_network(self.training_summary)

    def env_config_for(self, days: Sequence[Scenario]) -> EnvConfig:
        """The env config to play ``days`` with (a kind may fix its driver slots)."""
        return agent_kind(self.kind).play_env_config(self.env_config, days)

    def info(self) -> dict[str, Any]:
        """The model's entry in a report."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "version": self.version,
            "preset": self.preset,
            "training_summary": self.training_summary,
        }


class Learner(ABC):
    """A kind's agent while it trains; the training loop calls, per day::

        start_day(env); while the day goes on: act(env) -> env.step -> observe(...) -> learn()
        end_day(env)

    and :meth:`state_dict` / :meth:`load_state_dict` for checkpoints.
    """

    config: HyperparameterConfig
    decisions: int
    """Decisions taken so far (the x axis of the logs)."""

    def prepare(self, env: DispatchEnv, day: Scenario) -> None:  # noqa: B027
        """Once, before the first training day of a new run (not when resuming)."""

    def pretrain(self, env: DispatchEnv, day: Callable[[int], Scenario]) -> None:  # noqa: B027
        """Once, before :meth:`prepare` in a new run: learning that is not reinforcement
        (``day(k)`` is training day ``k``)."""

    @abstractmethod
    def start_day(self, env: DispatchEnv) -> None:
        """The env was just reset to a training day."""

    @abstractmethod
    def act(self, env: DispatchEnv) -> int:
        """The (exploring) action to take now."""

    @abstractmethod
    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        """The env took ``action`` and paid ``reward``."""

    @abstractmethod
    def learn(self) -> None:
        """Gradient steps when they are due."""

    @abstractmethod
    def end_day(self, env: DispatchEnv) -> dict[str, float | None]:
        """The day is over: store it; returns the day's ``epsilon``, ``td_loss``, ``q_mean``."""

    @abstractmethod
    def policy(self, name: str) -> LearnedPolicy:
        """The greedy policy of the network that is evaluated and saved."""

    @abstractmethod
    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        """Write that network as a model file of the kind (atomically)."""

    @abstractmethod
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class AgentKind(ABC):
    """What the pipeline knows of a learned kind."""

    name: str
    summary: str
    """One line for ``--help``."""
    config_type: type[HyperparameterConfig]
    model_format: str
    """The ``format`` its model files name in their header."""
    default_days: str
    """``fleets`` (days of every fleet size) or ``preset`` (days of one preset)."""
    untrained_start = "the network before its first training day"
    """What the kind plays before any training (for ``--help``): a run's best model is its
    best evaluation on the selection days, this start included."""

    @abstractmethod
    def train_env_config(self, max_drivers: int) -> EnvConfig:
        """The env config to train on days of at most ``max_drivers`` drivers."""

    @abstractmethod
    def play_env_config(self, trained: EnvConfig, days: Sequence[Scenario]) -> EnvConfig:
        """The env config to play ``days`` with a model trained on ``trained``."""

    @abstractmethod
    def new_learner(self, config: Any, env: DispatchEnv, seed: int) -> Learner: ...

    @abstractmethod
    def load_model(self, path: str | Path, name: str | None = None) -> LearnedModel:
        """Load a model file of this kind.

        :raises ModelFileError: one line naming the file and why it cannot be used.
        """

    @abstractmethod
    def search_space(self) -> Sequence[Hyperparameter]:
        """The tuner's hyperparameters of this kind."""

    serving_runtimes: tuple[str, ...] = ("auto",)
    """The runtimes :meth:`load_served` accepts (``auto``: the kind's choice for the file)."""
    onnx_format: str | None = None
    """The ``format`` its ONNX exports name in their metadata (None: it has no export)."""

    def load_served(self, path: Path, runtime: str, probe_day: ProbeDay) -> ServedModel:
        """A model file of this kind (or its ONNX export) ready to serve on ``runtime``; the
        caller checked the file's size and that ``runtime`` is one of
        :attr:`serving_runtimes`. ``probe_day`` builds a tiny live day to try the model on.

        :raises ModelLoadError: one line naming why the file cannot serve.
        """
        raise ModelLoadError(f"model: a {self.name} model cannot be served")

    def lookahead_policy(self, model: LearnedModel, candidates: int) -> Policy | None:
        """``model`` with a look ahead on top (``evaluate --lookahead N``): at each decision
        ``candidates`` assignments played on in copies of the day on the bookings known then,
        the best taken; None when the kind has none."""
        return None

    def export_onnx(self, path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
        """A model file's ONNX graph (its metadata included), the number of real states it was
        checked on, and the largest difference of its values to the model's own there.

        :raises ModelLoadError: the file cannot be read, or the kind has no ONNX export.
        """
        raise ModelLoadError(f"onnx: a {self.name} model has no ONNX export")


_KINDS: dict[str, AgentKind] = {}
_LOADED = False


def register_kind(kind: AgentKind) -> AgentKind:
    """Make ``kind`` known by its name (and its model files by their format)."""
    _KINDS[kind.name] = kind
    return kind


def _registered_kinds() -> dict[str, AgentKind]:
    """The kinds of the installed entry points, loaded once, and those registered since."""
    global _LOADED
    if not _LOADED:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            kind = point.load()
            if not isinstance(kind, AgentKind):
                raise TypeError(
                    f"entry point {point.name} = {point.value} ({ENTRY_POINT_GROUP}) names "
                    f"{type(kind).__name__}, not an AgentKind"
                )
            _KINDS.setdefault(kind.name, kind)
        _LOADED = True
        if not _KINDS:
            raise RuntimeError(
                f"no agent kind is installed (entry point group {ENTRY_POINT_GROUP}): "
                "reinstall the package (make .venv/.installed)"
            )
    return _KINDS


def kind_names() -> list[str]:
    """The registered kinds, the default first."""
    names = sorted(_registered_kinds())
    return sorted(names, key=lambda name: name != DEFAULT_KIND)


def agent_kind(name: str) -> AgentKind:
    """The kind called ``name``.

    :raises ValueError: naming the known kinds.
    """
    kinds = _registered_kinds()
    if name not in kinds:
        raise ValueError(f"agent: unknown kind {name!r}; known kinds are {kind_names()}")
    return kinds[name]


def kind_of_format(format_name: str | None) -> AgentKind | None:
    """The kind whose model files name ``format_name``, or None."""
    for kind in _registered_kinds().values():
        if kind.model_format == format_name:
            return kind
    return None


def kind_of_onnx_format(format_name: str | None) -> AgentKind | None:
    """The kind whose ONNX exports name ``format_name``, or None."""
    for kind in _registered_kinds().values():
        if kind.onnx_format is not None and kind.onnx_format == format_name:
            return kind
    return None
