"""Scenario files named by date, split so the agent is judged on days after the training days."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from rldispatch.domain import ScenarioError

DATE_AT_END_OF_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})$")


def day_of(path: str | Path) -> date:
    """The service day in a scenario file's name: ``2025-10-20.json`` or ``x-2025-10-20.json``."""
    path = Path(path)
    match = DATE_AT_END_OF_NAME.search(path.stem)
    if match is None:
        raise ScenarioError(f"{path}: the file name does not end with a date like 2025-10-20")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise ScenarioError(f"{path}: {match.group(1)!r} in the file name is not a date") from None


def split_days_by_date(
    days: str | Path | Iterable[str | Path],
    held_out_share: float = 0.2,
    cutoff: date | None = None,
) -> tuple[list[Path], list[Path]]:
    """Split scenario files named by date into (training days, held-out days), each by date.

    ``days`` is a folder of ``*.json`` files or a list of paths. With ``cutoff`` the days on or
    after it are held out; otherwise the last ``held_out_share`` of the dates (rounded, at
    least one, never all). Files of the same date always land on the same side.
    """
    if isinstance(days, (str, Path)):
        folder = Path(days)
        if not folder.is_dir():
            raise ScenarioError(f"{folder}: no such folder of scenarios")
        paths = list(folder.glob("*.json"))
    else:
        paths = [Path(path) for path in days]
    dated = sorted(((day_of(path), path) for path in paths), key=lambda item: (item[0], item[1]))
    dates = sorted({day for day, _ in dated})
    where = f"{days}: " if isinstance(days, (str, Path)) else ""
    if len(dates) < 2:
        raise ScenarioError(
            f"{where}need scenario files of at least 2 different days to hold some out, "
            f"got {len(dates)}"
        )
    if cutoff is None:
        if not 0.0 < held_out_share < 1.0:
            raise ValueError(f"held_out_share: must be between 0 and 1, got {held_out_share}")
        n_held_out = min(len(dates) - 1, max(1, round(held_out_share * len(dates))))
        cutoff = dates[-n_held_out]
    training = [path for day, path in dated if day < cutoff]
    held_out = [path for day, path in dated if day >= cutoff]
    if not training or not held_out:
        raise ScenarioError(
            f"cutoff {cutoff} leaves no {'training' if not training else 'held-out'} days "
            f"(days run from {dates[0]} to {dates[-1]})"
        )
    return training, held_out
