"""A tuner search space as data: each hyperparameter, its range and how it sets a config.

Each agent kind declares its own space (``AgentKind.search_space``); the tuner samples it
with Optuna and the docs print it with :func:`search_space_markdown`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Hyperparameter:
    """One tuned hyperparameter: its Optuna distribution and how it sets a kind's config.

    A numeric parameter has ``low``/``high`` (``log``: sampled uniformly in log space;
    ``integer``: whole numbers); a categorical one has ``choices``. ``to_config(value,
    trial_steps)`` turns the sampled value into config fields (default: the field of the
    same name); ``trial_steps`` is the expected number of decisions of a trial's training.
    """

    name: str
    label: str
    help: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None
    to_config: Callable[[Any, int], dict[str, Any]] | None = None

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial proposes."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def config_fields(self, value: Any, trial_steps: int) -> dict[str, Any]:
        return self.to_config(value, trial_steps) if self.to_config else {self.name: value}

    def range_text(self) -> str:
        if self.choices is not None:
            return ", ".join(format_value(choice) for choice in self.choices)
        scale = "log-uniform" if self.log else "uniform"
        kind = "integer " if self.integer else ""
        return f"{format_value(self.low)} to {format_value(self.high)}, {kind}{scale}"

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in the study, so workers can check they agree)."""
        if self.choices is not None:
            return {"name": self.name, "choices": list(self.choices)}
        return {
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "integer": self.integer,
        }


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and (abs(value) < 1e-3 or abs(value) >= 1e5) and value != 0:
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    if isinstance(value, int) and value >= 1_000:
        return f"{value:_}".replace("_", " ")
    return str(value)


def share_of_steps(field_name: str) -> Callable[[float, int], dict[str, Any]]:
    """A parameter sampled as a share of the trial's training steps, set in env steps."""

    def to_config(share: float, trial_steps: int) -> dict[str, Any]:
        return {field_name: max(1, round(share * trial_steps))}

    return to_config


def search_space_markdown(space: Sequence[Hyperparameter]) -> str:
    """The search space as the Markdown table that ``docs/tuning.md`` shows."""
    lines = [
        "| # | parameter | range | what it is |",
        "| --- | --- | --- | --- |",
    ]
    for index, parameter in enumerate(space, start=1):
        lines.append(
            f"| {index} | `{parameter.name}` | {parameter.range_text()} | {parameter.help} |"
        )
    return "\n".join(lines)


def config_from_params(
    params: dict[str, Any], trial_steps: int, base: Any, space: Sequence[Hyperparameter]
) -> Any:
    """``base`` (a kind's config) with the sampled parameters of a trial of ``trial_steps``
    expected training decisions set."""
    values: dict[str, Any] = {}
    for parameter in space:
        if parameter.name in params:
            values.update(parameter.config_fields(params[parameter.name], trial_steps))
    return replace(base, **values)
