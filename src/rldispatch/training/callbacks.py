"""What the training loop does around the days: callbacks, as in Stable-Baselines3.

The loop (:mod:`rldispatch.training.train`) calls each callback at the start of the run, at
the end of every day and at the end of the run. Here: the progress bar and TensorBoard.
Evaluation, the best model and checkpoints are the loop's own (they are what a resumed run
must reproduce); Optuna's pruning is the ``on_evaluation`` hook of :func:`train`.

TensorBoard tags (the x axis is the decision count):

| tag | what |
| --- | --- |
| ``charts/episodic_return`` | the env reward of the training day |
| ``charts/episode_length`` | decisions in the day |
| ``charts/completion_rate``, ``charts/late_pickup_rate`` | of the training day |
| ``charts/drivers`` | fleet size of the training day |
| ``charts/epsilon`` | exploration rate at the end of the day |
| ``charts/decisions_per_second`` | training speed since the run (or its resume) started |
| ``losses/td_loss``, ``losses/q_values`` | mean TD loss and Q of the actions taken, per day |
| ``losses/label_disagreement`` | guided-reopt: share of decisions where re-plan and label differ |
| ``es/gain_vs_reopt`` | guided-reopt ``trainer="es"``: the perturbations' mean reward − reopt's |
| ``es/pair_spread`` | the same: mean absolute reward difference of a pair's twins |
| ``es/gate_weight_norm``, ``es/cpu_minutes`` | the same: the searched weights' norm; training CPU |
| ``eval/reward``, ``eval/completion_rate`` | mean over the selection days, per evaluation |
| ``eval/late_pickup_rate``, ``eval/cancelled``, ``eval/distance_km`` | the same |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from rldispatch.progress import progress_bar

DAY_TAGS = {
    "reward": "charts/episodic_return",
    "decisions": "charts/episode_length",
    "completion_rate": "charts/completion_rate",
    "late_pickup_rate": "charts/late_pickup_rate",
    "drivers": "charts/drivers",
    "epsilon": "charts/epsilon",
    "decisions_per_second": "charts/decisions_per_second",
    "td_loss": "losses/td_loss",
    "q_mean": "losses/q_values",
    "disagreement": "losses/label_disagreement",
    "es_gain": "es/gain_vs_reopt",
    "es_spread": "es/pair_spread",
    "es_weight_norm": "es/gate_weight_norm",
    "cpu_minutes": "es/cpu_minutes",
}
EVALUATION_NAMES = ("reward", "completion_rate", "late_pickup_rate", "cancelled", "distance_km")
TENSORBOARD_TAGS = (*DAY_TAGS.values(), *(f"eval/{name}" for name in EVALUATION_NAMES))
"""Every tag a training run writes (``docs/training.md`` lists them)."""
LABELLED_KIND_TAGS = frozenset(
    {
        "losses/label_disagreement",
        "es/gain_vs_reopt",
        "es/pair_spread",
        "es/gate_weight_norm",
        "es/cpu_minutes",
    }
)
"""Tags only guided-reopt's trainers write (labelled states; evolution strategies)."""


class Callback:
    """Hooks of the training loop; each does nothing unless overridden."""

    def on_run_start(self, run: Any) -> None:
        """Before the first day (of the run, or of its resumed part)."""

    def on_day_end(self, run: Any, record: dict[str, Any]) -> None:
        """After each training day, with its record."""

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None:
        """After each evaluation on the selection days, with its record."""

    def on_run_end(self, run: Any) -> None:
        """After the last day, also when training stops on an error."""


class ProgressBar(Callback):
    """A tqdm bar over the seconds of a time budget, or over the days of a budget in days."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_run_start(self, run: Any) -> None:
        budget_s = run.settings.max_seconds
        self.by_time = budget_s is not None  # with both budgets, the clock is what users watch
        total = round(budget_s) if self.by_time else run.settings.max_days
        initial = min(round(run.elapsed_s()), total) if self.by_time else run.day
        self.bar = progress_bar(
            self.enabled,
            total=total,
            initial=initial,
            unit="s" if self.by_time else "day",
            desc=f"train {run.kind.name}",
            dynamic_ncols=True,
        )

    def on_day_end(self, run: Any, record: dict[str, Any]) -> None:
        bar = self.bar
        if self.by_time:
            bar.n = min(round(run.elapsed_s()), bar.total)
        else:
            bar.n = run.day
        loss = record["td_loss"]
        bar.set_postfix(
            day=run.day,
            reward=round(record["reward"]),
            loss="-" if loss is None else f"{loss:.3f}",
            dps=round(record["decisions_per_second"]),
            refresh=False,
        )
        bar.refresh()

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None:
        if self.bar is not None and self.enabled:
            best = " (best so far: kept as best_model)" if record.get("best") else ""
            self.bar.write(
                f"evaluation after {run.day} days: reward {record['reward']:.1f}, late "
                f"{record['late_pickup_rate']:.1%}{best}"
            )

    def on_run_end(self, run: Any) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoard(Callback):
    """Writes the tags of the module docstring under ``out_dir/tensorboard``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: Any = None

    def on_run_start(self, run: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run hides what the killed one logged after its last checkpoint; the
        # evaluation at the checkpoint's own step stays.
        purge = run.decisions + 1 if run.resumed else None
        self.writer = SummaryWriter(str(self.folder), purge_step=purge)

    def on_day_end(self, run: Any, record: dict[str, Any]) -> None:
        for name, tag in DAY_TAGS.items():
            if record.get(name) is not None:
                self.writer.add_scalar(tag, record[name], record["decision"])

    def on_evaluation(self, run: Any, record: dict[str, Any]) -> None:
        for name in EVALUATION_NAMES:
            self.writer.add_scalar(f"eval/{name}", record[name], record["decision"])
        self.writer.flush()

    def on_run_end(self, run: Any) -> None:
        if self.writer is not None:
            self.writer.close()
