"""What a study found: the optimal config, the top trials, importances and plots.

:func:`write_outputs` writes them into a folder (each file atomically); they describe the
whole study, every worker's trials.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rldispatch.agents.config_fields import ConfigError, HyperparameterConfig
from rldispatch.agents.search_space import Hyperparameter, format_value
from rldispatch.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from rldispatch.text import plural
from rldispatch.training.tuning_settings import TuneSettings
from rldispatch.training.tuning_storage import masked_url

TOP_TRIALS = 10


@dataclass
class WorkerReport:
    """What one tuning worker did."""

    worker: str
    trials: dict[str, int]
    wall_time_s: float
    stopped_by_budget: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "trials": self.trials,
            "wall_time_s": self.wall_time_s,
            "stopped_by_budget": self.stopped_by_budget,
        }


def count_states(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """Trials by state (``complete``, ``pruned``, ``fail``, ...) and their ``total``."""
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    counts["total"] = sum(counts.values())
    return counts


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best first (ties: the earlier trial first)."""
    complete = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trial.value is not None and math.isfinite(trial.value)
    ]
    return sorted(complete, key=lambda trial: (-trial.value, trial.number))


def trial_config(trial: FrozenTrial, settings: TuneSettings) -> HyperparameterConfig:
    """The config a trial trained with (as stored with it, else rebuilt from its params)."""
    stored = trial.user_attrs.get("config")
    if stored is not None:
        try:
            return settings.kind.config_type.from_dict(stored)
        except ConfigError:
            pass  # stored by a version whose config had other fields
    return settings.config_for(trial.params)


def param_importances(study: optuna.Study) -> dict[str, Any]:
    """Optuna's parameter importances (PED-ANOVA in Optuna 5), or why there are none."""
    if len(ranked_trials(study)) < 2:
        return {"error": "fewer than two completed trials"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"values": {name: float(value) for name, value in values.items()}}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return format_value(value)


def top_trials_markdown(trials: Sequence[FrozenTrial], space: Sequence[Hyperparameter]) -> str:
    """The best trials as a Markdown table: rank, trial, reward, then every parameter."""
    header = ["rank", "trial", "reward"] + [parameter.label for parameter in space]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for rank, trial in enumerate(trials, start=1):
        cells = [str(rank), str(trial.number), f"{trial.value:.1f}"]
        cells += [_cell(trial.params.get(parameter.name, "")) for parameter in space]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _trial_record(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "params": trial.params,
        "worker": trial.user_attrs.get("worker"),
        "start_reward": trial.user_attrs.get("start_reward"),
        "intermediate_values": {str(step): v for step, v in trial.intermediate_values.items()},
        "days": trial.user_attrs.get("days"),
        "wall_time_s": trial.user_attrs.get("wall_time_s"),
    }


def _save_figure(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def write_plots(study: optuna.Study, out_dir: Path, importances: dict[str, Any]) -> dict[str, str]:
    """PNG plots: optimisation history, learning curves of every trial, importances."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    files: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = optuna_plots.plot_optimization_history(study)
        axes.set_ylabel("mean evaluation reward")
        files["optimization_history"] = str(
            _save_figure(axes.figure, out_dir / "optimization_history.png")
        )
        axes = optuna_plots.plot_intermediate_values(study)
        axes.set_xlabel("training day")
        axes.set_ylabel("mean evaluation reward")
        files["intermediate_values"] = str(
            _save_figure(axes.figure, out_dir / "intermediate_values.png")
        )
    values = importances.get("values")
    if values:
        names = list(values)[::-1]
        figure, axes = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.2))
        axes.barh(names, [values[name] for name in names], color="tab:blue")
        axes.set_xlabel("importance (share of the objective's variation)")
        axes.set_title(f"Parameter importances, study {study.study_name}")
        files["param_importances_plot"] = str(
            _save_figure(figure, out_dir / "param_importances.png")
        )
    return files


def write_outputs(
    study: optuna.Study,
    settings: TuneSettings,
    out_dir: str | Path,
    storage: str,
    worker: WorkerReport | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Write the study's results into ``out_dir`` (each file atomically) and return the
    summary (also written as ``tuning_summary.json``).

    Files: ``optimal_config.json`` (the best trial's config of the study's kind, for
    ``train --agent KIND --config`` and ``compare``), ``top_trials.md``,
    ``param_importances.json``, ``optimization_history.png``, ``intermediate_values.png``,
    ``param_importances.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ranked = ranked_trials(study)
    top = ranked[:TOP_TRIALS]
    importances = param_importances(study)
    files: dict[str, str] = {}
    best: dict[str, Any] | None = None
    if ranked:
        config = trial_config(ranked[0], settings)
        files["optimal_config"] = str(config.save(out_dir / "optimal_config.json"))
        best = {**_trial_record(ranked[0]), "config": config.to_dict()}
    files["top_trials"] = str(
        atomic_write_text(
            out_dir / "top_trials.md",
            f"# Top {len(top)} trials of study {study.study_name} ({settings.agent})\n\n"
            f"Reward: mean reward on {settings.eval_days} evaluation days after "
            f"{settings.budget_text()}{uncertainty_text(settings.to_dict())}.\n\n"
            + top_trials_markdown(top, settings.space)
            + "\n",
        )
    )
    files["param_importances"] = str(
        atomic_write_json(out_dir / "param_importances.json", importances)
    )
    if plots and ranked:  # plots of a study with no completed trial say nothing
        files.update(write_plots(study, out_dir, importances))
    files["summary"] = str(out_dir / "tuning_summary.json")
    summary = {
        "study": study.study_name,
        "agent": settings.agent,
        "storage": masked_url(storage),
        "direction": "maximize",
        "settings": settings.to_dict(),
        "trials": count_states(study.get_trials(deepcopy=False)),
        "best_trial": best,
        "top_trials": [_trial_record(trial) for trial in top],
        "importances": importances,
        "this_worker": None if worker is None else worker.to_dict(),
        "files": files,
    }
    atomic_write_json(out_dir / "tuning_summary.json", summary)
    return summary


def uncertainty_text(settings: dict[str, Any]) -> str:
    """`` on an uncertain day (...)`` when the study's trials draw noise, else empty."""
    noise = settings.get("uncertainty")
    if not noise:
        return ""
    return (
        f" on an uncertain day (travel noise {noise['travel_cv']:g}, no-show rate "
        f"{noise['no_show_rate']:g}, service delay {noise['service_delay_cv']:g})"
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few printed lines."""
    counts = summary["trials"]
    lines = [
        f"study {summary['study']} ({summary['agent']}, {summary['storage']}): "
        f"{plural(counts['total'], 'trial')}, {counts['complete']} complete, "
        f"{counts['pruned']} pruned, "
        f"{counts['fail']} failed, {counts['running']} running, {counts['waiting']} waiting",
    ]
    worker = summary.get("this_worker")
    if worker:
        mine = worker["trials"]
        lines.append(
            f"this worker: {plural(mine['total'], 'trial')} ({mine['complete']} complete, "
            f"{mine['pruned']} pruned, {mine['fail']} failed) in {worker['wall_time_s']:.0f} s"
        )
    noise = uncertainty_text(summary["settings"])
    if noise:
        lines.append(f"trials{noise}")
    best = summary.get("best_trial")
    if best:
        lines.append(f"best: trial {best['number']}, mean evaluation reward {best['value']:.1f}")
    importances = summary["importances"].get("values")
    if importances:
        ranked = ", ".join(f"{name} {value:.2f}" for name, value in list(importances.items())[:5])
        lines.append(f"most important: {ranked}")
    return "\n".join(lines)
