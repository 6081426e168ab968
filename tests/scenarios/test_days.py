"""Days named by date split into training and held-out days."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from rldispatch.domain import ScenarioError
from rldispatch.scenarios.days import day_of, split_days_by_date

FIRST_DAY = date(2025, 10, 1)


def make_days(folder: Path, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for offset in range(count):
        path = folder / f"{(FIRST_DAY + timedelta(days=offset)).isoformat()}.json"
        path.write_text("{}")
        paths.append(path)
    return paths


def test_held_out_days_come_after_every_training_day(tmp_path):
    make_days(tmp_path, 10)

    training, held_out = split_days_by_date(tmp_path)

    assert len(training) == 8 and len(held_out) == 2
    assert max(map(day_of, training)) < min(map(day_of, held_out))


def test_at_least_one_day_is_held_out(tmp_path):
    make_days(tmp_path, 3)

    training, held_out = split_days_by_date(tmp_path, held_out_share=0.1)

    assert [day_of(path) for path in held_out] == [FIRST_DAY + timedelta(days=2)]
    assert len(training) == 2


def test_cutoff_holds_out_the_days_from_that_date(tmp_path):
    paths = make_days(tmp_path, 6)

    training, held_out = split_days_by_date(paths, cutoff=FIRST_DAY + timedelta(days=4))

    assert training == paths[:4] and held_out == paths[4:]


def test_cutoff_leaving_no_training_day_is_refused(tmp_path):
    paths = make_days(tmp_path, 3)

    with pytest.raises(ScenarioError, match="no training days"):
        split_days_by_date(paths, cutoff=FIRST_DAY)


def test_file_not_named_by_date_is_refused(tmp_path):
    make_days(tmp_path, 3)
    (tmp_path / "monday.json").write_text("{}")

    with pytest.raises(ScenarioError, match="monday.json"):
        split_days_by_date(tmp_path)


def test_a_single_day_cannot_be_split(tmp_path):
    make_days(tmp_path, 1)

    with pytest.raises(ScenarioError, match="at least 2"):
        split_days_by_date(tmp_path)
