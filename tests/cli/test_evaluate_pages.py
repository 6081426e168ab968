"""``evaluate`` and ``compare`` on every day of a folder (``--all-days``), and
``evaluate --html``: the page a person reads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rldispatch.cli import main
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import make_preset
from tests.service.helpers import make_pairwise_model_file


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairwise_model_file(tmp_path_factory.mktemp("model") / "pairwise.safetensors")


def short_day(seed: int, bookings: int = 30):
    day = make_preset("geneva", seed)
    return replace(day, bookings=day.bookings[:bookings])


def write_days(folder: Path, names: list[str]) -> Path:
    for seed, name in enumerate(names):
        save_scenario(short_day(seed), folder / f"{name}.json")
    return folder


def test_evaluate_all_days_plays_a_folder_of_undated_files(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = write_days(tmp_path / "days", ["monday", "tuesday", "wednesday"])
    assert main(["evaluate", "--model", str(model), "--scenarios", str(days)]) == 2
    err = capsys.readouterr().err
    assert "does not end with a date" in err and "--all-days" in err
    report_path = tmp_path / "report.json"
    argv = ["evaluate", "--model", str(model), "--scenarios", str(days), "--all-days"]
    assert main(argv + ["--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["seeds"] == ["monday", "tuesday", "wednesday"]
    assert "held_out_days" not in report


def test_evaluate_all_days_plays_the_training_dates_of_a_dated_folder_too(
    model: Path, tmp_path: Path
) -> None:
    names = [f"2025-10-0{k}" for k in range(1, 6)]
    days = write_days(tmp_path / "days", names)
    held_out, every = tmp_path / "held_out.json", tmp_path / "every.json"
    argv = ["evaluate", "--model", str(model), "--scenarios", str(days)]
    assert main(argv + ["--json", str(held_out)]) == 0
    assert main(argv + ["--all-days", "--json", str(every)]) == 0
    assert json.loads(held_out.read_text())["seeds"] == ["2025-10-05"]
    assert json.loads(every.read_text())["seeds"] == names


def test_compare_all_days_pairs_every_day_of_the_folder(model: Path, tmp_path: Path) -> None:
    days = write_days(tmp_path / "days", ["a", "b"])
    report_path = tmp_path / "report.json"
    argv = ["compare", str(model), "insertion", "--scenarios", str(days), "--all-days"]
    assert main(argv + ["--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["seeds"] == ["a", "b"]
    assert set(report["policies"]) == {"pairwise", "insertion"}


def test_all_days_without_a_folder_is_refused(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--model", str(model), "--all-days", "--episodes", "1"]) == 2
    assert "--all-days: only with --scenarios" in capsys.readouterr().err


def test_evaluate_html_writes_one_self_contained_page(model: Path, tmp_path: Path) -> None:
    days = write_days(tmp_path / "days", ["day-a", "day-b"])
    page = tmp_path / "page.html"
    argv = ["evaluate", "--model", str(model), "--scenarios", str(days), "--all-days"]
    argv += ["--compare-baseline", "--html", str(page), "--html-day", "day-b"]
    assert main(argv) == 0
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert 'src="http' not in text and 'href="http' not in text and "<link" not in text
    # the model's routes and the best other policy's, on the chosen day only
    assert text.count("<svg") == 2
    assert "Routes of pairwise on geneva-1" in text
    assert "geneva-0</h2>" not in text


def test_an_unknown_html_day_is_refused_before_the_days_are_played(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.html"
    argv = ["evaluate", "--model", str(model), "--episodes", "2", "--html", str(page)]
    assert main(argv + ["--html-day", "7"]) == 2
    assert "--html-day: '7' is not a day of the report (2000000, 2000001)" in (
        capsys.readouterr().err
    )
    assert not page.exists()


def test_compare_html_maps_the_first_entry_and_the_best_other(model: Path, tmp_path: Path) -> None:
    days = write_days(tmp_path / "days", ["a", "b"])
    page = tmp_path / "page.html"
    argv = ["compare", "nearest", str(model), "insertion", "--scenarios", str(days)]
    assert main(argv + ["--all-days", "--html", str(page), "--html-day", "a"]) == 0
    text = page.read_text()
    assert "Routes of nearest on geneva-0" in text
    assert text.count("<svg") == 2 and "nearest − insertion" in text
