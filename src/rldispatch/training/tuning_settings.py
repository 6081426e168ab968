"""What a tuning trial is: the settings every worker of a study shares, and each worker's own.

:class:`TuneSettings` names the agent kind, the days a trial trains on, its budget in days or
minutes, the evaluation days (always days of ``TUNING_SEEDS``: never a held-out day) and the
config the untuned hyperparameters come from. It is stored in the study as JSON, so a worker
that joins the study can check that it runs the same trials. :class:`PrunerSettings` and
:class:`HeartbeatSettings` belong to each worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import optuna

from rldispatch.agents.config_fields import ConfigError, HyperparameterConfig
from rldispatch.agents.kinds import DEFAULT_KIND, AgentKind, agent_kind
from rldispatch.agents.search_space import Hyperparameter, config_from_params
from rldispatch.domain import Scenario
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.presets import TUNING_SEEDS, make_preset
from rldispatch.sim.noise import Uncertainty
from rldispatch.training.days import (
    FleetDays,
    PresetDays,
    RoadNetworkDays,
    TrainingDays,
    days_from_description,
)

DEFAULT_TRIAL_DAYS = 30
"""Training days of a trial when neither days nor minutes are given."""
DEFAULT_EVAL_EVERY_TIMED = 10
"""Days between evaluations of a trial with a budget in minutes only."""
DEFAULT_EVAL_DAYS = {"fleets": 16, "preset": 5}
"""Evaluation days by day source: days of every fleet size vary more than a preset's."""
STEP_ESTIMATE_DAYS = 16
"""Training days whose bookings estimate the decisions of a training day."""


class TuneError(ValueError):
    """A study that cannot be opened or joined as asked."""


def tuning_selection_days(days: TrainingDays, count: int) -> list[Scenario]:
    """The first ``count`` days of ``TUNING_SEEDS`` in the style of ``days``: the days every
    trial is scored on (never a training day, never a held-out day)."""
    if isinstance(days, RoadNetworkDays):  # the same days; the wrapper puts them on its roads
        return tuning_selection_days(days.days, count)
    if isinstance(days, FleetDays):
        return days.distribution.tuning_days(count)
    if isinstance(days, PresetDays):
        return [make_preset(days.preset, seed) for seed in TUNING_SEEDS[:count]]
    raise TuneError(f"days: the tuner trains on fleet or preset days, not {type(days).__name__}")


def default_days(kind: AgentKind, preset: str = "geneva") -> TrainingDays:
    """The kind's own day source (``fleets`` or ``preset``)."""
    if kind.default_days == "fleets":
        return FleetDays(selection=0)
    return PresetDays(preset, selection=0)


def scales_with_trial_length(parameter: Hyperparameter) -> bool:
    """True when the parameter sets a config field as a share of a trial's decisions."""
    values = parameter.choices if parameter.choices is not None else (parameter.low, parameter.high)
    return any(
        parameter.config_fields(value, 1_000) != parameter.config_fields(value, 1_000_000)
        for value in values
    )


@dataclass(frozen=True)
class TuneSettings:
    """What a trial is: the settings every worker of one study must share.

    :param agent: the agent kind tuned (its config type and search space).
    :param days: the days trials train on (fleet or preset days); default: the kind's own.
        Its selection days are replaced by the first ``eval_days`` days of ``TUNING_SEEDS``.
    :param max_days: training days per trial...
    :param max_minutes: ...and/or wall time per trial; the first reached ends the trial
        (default: 30 days).
    :param eval_days: evaluation days (default 16 for fleet days, 5 for a preset).
    :param eval_every: evaluate (and report to the pruner) every this many days, and at the
        end; default: a fifth of ``max_days``, or 10 with a budget in minutes only.
    :param seed: training seed of every trial.
    :param base_config: the hyperparameters that are not tuned (default: the kind's defaults).
    :param reward: the reward weights trials learn and are scored under (default: the
        defaults; stored in the study only when they differ, so earlier studies still match).
    :param uncertainty: the uncertain day trials train and are scored on (None: the certain
        day; stored in the study only when something is drawn).
    """

    agent: str = DEFAULT_KIND
    days: TrainingDays | None = None
    max_days: int | None = None
    max_minutes: float | None = None
    eval_days: int | None = None
    eval_every: int | None = None
    seed: int = 0
    base_config: HyperparameterConfig | None = None
    reward: RewardConfig | None = None
    uncertainty: Uncertainty | None = None

    def __post_init__(self) -> None:
        try:
            kind = agent_kind(self.agent)
        except ValueError as error:
            raise TuneError(str(error)) from error
        if self.max_days is None and self.max_minutes is None:
            self._set("max_days", DEFAULT_TRIAL_DAYS)
        if self.max_days is not None and self.max_days < 1:
            raise TuneError(f"days: must be at least 1 per trial, got {self.max_days}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise TuneError(f"minutes: must be > 0 per trial, got {self.max_minutes}")
        days = self.days if self.days is not None else default_days(kind)
        description = days.describe()
        on_roads = description["source"] == "road_network"
        own = description["days"] if on_roads else description
        if self.eval_days is None:
            self._set("eval_days", DEFAULT_EVAL_DAYS.get(own["source"], 5))
        if self.eval_days < 1:
            raise TuneError(f"eval_days: must be at least 1, got {self.eval_days}")
        # A fresh copy of the source, so the caller's days keep their own selection days.
        own = {**own, "selection": self.eval_days}
        days = days_from_description({**description, "days": own} if on_roads else own)
        self._set("days", days.with_selection_days(tuning_selection_days(days, self.eval_days)))
        if self.eval_every is None:
            every = max(1, self.max_days // 5) if self.max_days else DEFAULT_EVAL_EVERY_TIMED
            self._set("eval_every", every)
        if self.eval_every < 1:
            raise TuneError(f"eval_every: must be at least 1, got {self.eval_every}")
        if self.base_config is None:
            self._set("base_config", kind.config_type())
        if not isinstance(self.base_config, kind.config_type):
            raise TuneError(
                f"config: a {kind.name} study takes a {kind.config_type.__name__}, "
                f"not a {type(self.base_config).__name__}"
            )
        if self.max_days is None:
            scaled = [p.name for p in self.space if scales_with_trial_length(p)]
            if scaled:
                raise TuneError(
                    f"--minutes alone: the {kind.name} search space sets {', '.join(scaled)} "
                    "as shares of a trial's training days; give --days too"
                )

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @property
    def kind(self) -> AgentKind:
        return agent_kind(self.agent)

    @property
    def space(self) -> tuple[Hyperparameter, ...]:
        return tuple(self.kind.search_space())

    @cached_property
    def steps_per_day(self) -> int:
        """Expected decisions of a training day: about one per booking (an assignment, or a
        wait that moves the clock), so the mean bookings of the first training days."""
        days = [self.days.day(index) for index in range(STEP_ESTIMATE_DAYS)]
        return round(sum(len(day.bookings) for day in days) / len(days))

    @property
    def trial_steps(self) -> int | None:
        """Expected decisions of a trial's training: what the ``*_share`` parameters scale
        (None with a budget in minutes only)."""
        return None if self.max_days is None else self.max_days * self.steps_per_day

    @property
    def max_seconds(self) -> float | None:
        return None if self.max_minutes is None else self.max_minutes * 60.0

    def config_for(self, params: dict[str, Any]) -> HyperparameterConfig:
        """The config of a trial that sampled ``params``: the base config with them set.

        :raises ConfigError: when the combination is not a valid config.
        """
        return config_from_params(params, self.trial_steps or 0, self.base_config, self.space)

    def budget_text(self) -> str:
        """``30 training days``, ``5 minutes of training``, or both."""
        parts = []
        if self.max_days is not None:
            parts.append(f"{self.max_days} training days")
        if self.max_minutes is not None:
            parts.append(f"{self.max_minutes:g} minutes of training")
        return " or ".join(parts)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneSettings:
        """The settings stored in a study (see :meth:`to_dict`).

        :raises TuneError: when the study was made with a search space or config this
            version does not have.
        """
        agent = data.get("agent", "dqn")  # a study of an earlier version tuned the flat DQN
        try:
            kind = agent_kind(agent)
        except ValueError as error:
            raise TuneError(f"the study tunes {agent!r}, a kind this version lacks") from error
        if data.get("search_space") != [p.describe() for p in kind.search_space()]:
            raise TuneError(
                f"the study was created with another {agent} search space than this version's"
            )
        days = data.get("days") or {"source": "preset", "preset": data["preset"], "selection": 0}
        try:
            base_config = kind.config_type.from_dict(data["base_config"])
        except ConfigError as error:
            raise TuneError(
                f"the study's base config does not fit this version: {error}"
            ) from error
        return cls(
            agent=agent,
            days=days_from_description(days),
            max_days=data.get("max_days", data.get("episodes")),
            max_minutes=data.get("max_minutes"),
            eval_days=len(data["eval_days"]),
            eval_every=int(data["eval_every"]),
            seed=int(data["seed"]),
            base_config=base_config,
            reward=RewardConfig(**data["reward"]) if data.get("reward") else None,
            uncertainty=Uncertainty(**data["uncertainty"]) if data.get("uncertainty") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        reward = {} if self.reward in (None, RewardConfig()) else {"reward": asdict(self.reward)}
        if self.uncertainty is not None and self.uncertainty.active:
            reward["uncertainty"] = self.uncertainty.to_dict()
        return {
            "agent": self.agent,
            "days": self.days.describe(),
            "eval_days": [day.name for day in self.days.selection_days],
            "max_days": self.max_days,
            "max_minutes": self.max_minutes,
            "eval_every": self.eval_every,
            "seed": self.seed,
            "trial_steps": self.trial_steps,
            "base_config": self.base_config.to_dict(),
            "search_space": [parameter.describe() for parameter in self.space],
            "objective": "mean reward on the evaluation days at the end of training",
            **reward,
        }


@dataclass(frozen=True)
class PrunerSettings:
    """The pruner of one worker (workers may differ: pruning is decided by each worker).

    :param kind: ``median``, ``hyperband`` or ``none``.
    :param startup_trials: ``median``: no pruning until this many trials have completed.
    :param warmup_evals: no pruning at a trial's first ``warmup_evals`` periodic evaluations
        (the first ones, with exploration still high, say little).
    """

    kind: str = "median"
    startup_trials: int = 4
    warmup_evals: int = 1

    def build(self, settings: TuneSettings) -> optuna.pruners.BasePruner:
        if self.kind == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.startup_trials,
                n_warmup_steps=self.warmup_evals * settings.eval_every
                + (1 if self.warmup_evals else 0),
            )
        if self.kind == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=settings.eval_every,
                max_resource=settings.max_days or "auto",
                reduction_factor=3,
            )
        if self.kind == "none":
            return optuna.pruners.NopPruner()
        raise TuneError(f"pruner: unknown pruner {self.kind!r}; choose median, hyperband or none")


@dataclass(frozen=True)
class HeartbeatSettings:
    """Heartbeat of running trials (seconds) and what happens to a trial whose worker died.

    :param interval_s: a running trial records a heartbeat this often.
    :param grace_s: a RUNNING trial without a heartbeat for this long is failed by the next
        worker that starts a trial.
    :param max_retry: a failed-by-heartbeat trial is queued again with the same parameters
        up to this many times.
    """

    interval_s: int = 30
    grace_s: int = 120
    max_retry: int = 1

    def __post_init__(self) -> None:
        if self.interval_s < 1 or self.grace_s < 1:
            raise TuneError("heartbeat: interval and grace period must be at least 1 second")
        if self.grace_s <= self.interval_s:
            raise TuneError(
                f"heartbeat: the grace period ({self.grace_s} s) must be longer than the "
                f"heartbeat interval ({self.interval_s} s), or live trials would be failed"
            )
        if self.max_retry < 0:
            raise TuneError(f"max_retry: must be >= 0, got {self.max_retry}")
