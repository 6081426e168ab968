"""``--travel-noise``, ``--no-show-rate``, ``--service-delay``: the verbs that play days on
an uncertain day, and what their reports say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.cli import main


def simulate(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    argv = ["simulate", "--policy", "insertion", "--episodes", "2", "--json", str(out)]
    assert main([*argv, *extra]) == 0
    return json.loads(out.read_text())


def test_every_report_states_the_noise_and_an_uncertain_day_differs(tmp_path: Path) -> None:
    certain = simulate(tmp_path, "certain")
    noisy = simulate(tmp_path, "noisy", "--travel-noise", "0.2", "--no-show-rate", "0.05")
    assert certain["uncertainty"] == {
        "travel_cv": 0.0,
        "no_show_rate": 0.0,
        "service_delay_cv": 0.0,
        "seed": 0,
    }
    assert noisy["uncertainty"]["travel_cv"] == 0.2
    assert noisy["uncertainty"]["no_show_rate"] == 0.05
    reward = "reward"
    assert (
        noisy["policies"]["insertion"][reward]["mean"]
        != certain["policies"]["insertion"][reward]["mean"]
    )


def test_the_hindsight_plan_is_solved_on_the_realised_day(tmp_path: Path) -> None:
    report = simulate(
        tmp_path,
        "hindsight",
        "--no-show-rate",
        "0.1",
        "--travel-noise",
        "0.2",
        "--hindsight",
        "--hindsight-time-limit",
        "2",
    )
    hindsight = report["policies"]["hindsight"]
    online = report["policies"]["insertion"]
    # Every no-show known in advance, legs as they took: more patients served, fewer late.
    assert hindsight["completion_rate"]["mean"] > online["completion_rate"]["mean"]
    assert hindsight["late_pickup_rate"]["mean"] < online["late_pickup_rate"]["mean"]


@pytest.mark.parametrize(
    ("option", "value"), [("--travel-noise", "-0.1"), ("--no-show-rate", "1.5")]
)
def test_a_noise_setting_out_of_bounds_is_one_line_and_exit_2(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--episodes", "1", option, value])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err
