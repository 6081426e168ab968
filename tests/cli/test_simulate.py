import json

import pytest

from rldispatch.cli import main
from rldispatch.sim.metrics import METRIC_NAMES
from tests.helpers import CORDEAU_DIR


def test_simulate_writes_the_report_contract(tmp_path, capsys):
    labels = write_days(tmp_path / "days", 5, bookings=12)
    out = tmp_path / "report.json"
    code = main(["simulate", "--scenarios", str(tmp_path / "days"), "--json", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    for name in ("random", "nearest", "insertion", "matching", "reopt"):
        assert name in captured.out
    assert "\r" not in captured.err  # stderr is no terminal here: no progress bar drawn
    report = json.loads(out.read_text())
    assert report["scenario"] == str(tmp_path / "days")
    assert report["episodes"] == report["days"] == 5
    assert report["seeds"] == labels
    assert report["statistics"]["intervals"] is True
    for policy in report["policies"].values():
        for metric in METRIC_NAMES:
            low, high = policy[metric]["ci95"]
            assert low <= policy[metric]["mean"] <= high


def test_simulate_is_reproducible(tmp_path):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        main(
            [
                "simulate",
                "--policy",
                "random",
                "--episodes",
                "2",
                "--seed",
                "4",
                "--json",
                str(path),
            ]
        )
    first, second = (without_timing(json.loads(path.read_text())) for path in paths)
    assert first == second
    assert first["scenario"] == "geneva" and first["seeds"] == [4, 5]


def without_timing(report: dict) -> dict:
    """A report without its decision times (wall-clock measurements)."""
    assert set(report["decision_time_ms"]) == set(report["policies"])
    return {key: value for key, value in report.items() if key != "decision_time_ms"}


def test_simulate_over_two_processes_writes_the_same_report(tmp_path):
    write_days(tmp_path / "days", 2, preset="geneva", bookings=12)
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        code = main(
            ["simulate", "--scenarios", str(tmp_path / "days")]
            + ["--jobs", jobs, "--json", str(out)]
        )
        assert code == 0
        reports.append(json.loads(out.read_text()))
    assert without_timing(reports[0]) == without_timing(reports[1])
    report = reports[0]
    assert set(report["policies"]) == {"random", "nearest", "insertion", "matching", "reopt"}
    assert report["decision_time_ms"]["reopt"]["p99"] >= report["decision_time_ms"]["reopt"]["mean"]


def test_simulate_refuses_zero_jobs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--jobs", "0"])
    assert exit_info.value.code == 2


@pytest.mark.skipif(not CORDEAU_DIR.is_dir(), reason=f"no Cordeau instances at {CORDEAU_DIR}")
@pytest.mark.parametrize("path", sorted(CORDEAU_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_simulate_insertion_runs_on_every_cordeau_instance(path, tmp_path):
    out = tmp_path / "r.json"
    code = main(
        [
            "simulate",
            "--scenario",
            str(path),
            "--policy",
            "insertion",
            "--episodes",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["policies"]["insertion"]["completion_rate"]["mean"] > 0


@pytest.mark.skipif(not CORDEAU_DIR.is_dir(), reason=f"no Cordeau instances at {CORDEAU_DIR}")
def test_simulate_shares_rides_on_a_cordeau_instance_within_its_ride_times(tmp_path):
    out = tmp_path / "r.json"
    path = CORDEAU_DIR / "a2-16.txt"
    code = main(["simulate", "--scenario", str(path), "--policy", "insertion", "--json", str(out)])
    assert code == 0
    figures = json.loads(out.read_text())["policies"]["insertion"]
    assert figures["occupancy"]["mean"] > 1.0 and figures["shared_ride_share"]["mean"] > 0.0
    assert figures["completion_rate"]["mean"] == 1.0


def test_hindsight_row_beats_every_online_policy_and_reports_regret(tmp_path, capsys):
    write_days(tmp_path / "days", 2, preset="geneva", bookings=20)
    out = tmp_path / "report.json"
    code = main(
        ["simulate", "--scenarios", str(tmp_path / "days"), "--hindsight"]
        + ["--hindsight-time-limit", "1", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    best = report["policies"]["hindsight"]["reward"]["mean"]
    for name in ("random", "nearest", "insertion", "matching"):
        assert report["policies"][name]["reward"]["mean"] < best
        assert report["regret"][name]["mean"] > 0
    assert "regret to hindsight" in capsys.readouterr().out


def test_scenarios_folder_is_split_by_date_for_evaluation(tmp_path):
    from rldispatch.cli.common import days_from_args
    from rldispatch.scenarios.files import save_scenario
    from rldispatch.scenarios.presets import make_preset

    for day in range(1, 6):
        save_scenario(make_preset("geneva", day), tmp_path / f"2025-10-0{day}.json")
    parser = __import__("argparse").ArgumentParser()
    from rldispatch.cli.common import add_day_arguments

    add_day_arguments(parser)
    args = parser.parse_args(["--scenarios", str(tmp_path)])
    training = days_from_args(args, folder_part="training")
    held_out = days_from_args(args, folder_part="held_out")
    assert training.labels == ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04"]
    assert held_out.labels == ["2025-10-05"]


def write_days(
    folder, count: int, preset: str = "classic", bookings: int | None = None
) -> list[str]:
    """``count`` preset days saved as dated scenario files; ``bookings`` keeps only the first
    that many bookings of each day (a short day: the re-optimiser plays it in a fraction)."""
    from dataclasses import replace

    from rldispatch.scenarios.files import save_scenario
    from rldispatch.scenarios.presets import make_preset

    folder.mkdir(parents=True, exist_ok=True)
    labels = [f"2025-10-{k + 1:02d}" for k in range(count)]
    for k, label in enumerate(labels):
        day = make_preset(preset, k)
        if bookings is not None:
            day = replace(day, bookings=day.bookings[:bookings])
        save_scenario(day, folder / f"{label}.json")
    return labels


def test_one_scenario_file_is_one_day_played_once(tmp_path, capsys):
    write_days(tmp_path / "days", 1)
    out = tmp_path / "r.json"
    path = tmp_path / "days" / "2025-10-01.json"
    code = main(["simulate", "--scenario", str(path), "--policy", "nearest", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["episodes"] == report["days"] == 1 and report["seeds"] == ["2025-10-01"]
    assert report["policies"]["nearest"]["reward"]["ci95"] is None
    assert "only 1 distinct day" in report["statistics"]["reason"]
    assert "1 distinct day, mean only" in capsys.readouterr().out


def test_more_episodes_of_one_scenario_file_are_refused(tmp_path, capsys):
    write_days(tmp_path, 1)
    path = tmp_path / "2025-10-01.json"
    code = main(["simulate", "--scenario", str(path), "--episodes", "30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--repeats" in err[0]


def test_a_folder_is_played_whole(tmp_path):
    labels = write_days(tmp_path / "days", 25)
    out = tmp_path / "r.json"
    code = main(
        ["simulate", "--scenarios", str(tmp_path / "days"), "--policy", "nearest"]
        + ["--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["days"] == 25 and report["seeds"] == labels
    assert "days_available" not in report


def test_episodes_caps_a_folder_and_the_cap_is_printed(tmp_path, capsys):
    write_days(tmp_path / "days", 7)
    out = tmp_path / "r.json"
    code = main(
        ["simulate", "--scenarios", str(tmp_path / "days"), "--policy", "nearest"]
        + ["--episodes", "6", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["days"] == 6 and report["days_available"] == 7 and report["episodes_cap"] == 6
    assert "--episodes 6 played the first 6 days of 7" in capsys.readouterr().out


def test_repeats_replay_only_the_stochastic_policy_and_keep_one_figure_per_day(tmp_path):
    write_days(tmp_path / "days", 2, bookings=12)
    reports = []
    for repeats in ("1", "3"):
        out = tmp_path / f"r{repeats}.json"
        code = main(
            ["simulate", "--scenarios", str(tmp_path / "days"), "--repeats", repeats]
            + ["--json", str(out)]
        )
        assert code == 0
        reports.append(json.loads(out.read_text()))
    once, thrice = reports
    assert thrice["days"] == 2 and thrice["repeats"] == {"count": 3, "policies": ["random"]}
    assert thrice["policies"]["nearest"] == once["policies"]["nearest"]
    assert thrice["policies"]["random"]["reward"] != once["policies"]["random"]["reward"]


def test_simulate_hindsight_reports_that_no_policy_beat_it(tmp_path):
    out = tmp_path / "report.json"
    code = main(
        ["simulate", "--policy", "matching", "--episodes", "2", "--hindsight"]
        + ["--hindsight-time-limit", "1", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    beaten = report["hindsight_beaten"]
    assert beaten["of_days"] == 2 and beaten["days"] == 0
    assert beaten["by_policy"]["matching"]["days"] == 0
    assert 0 <= report["hindsight_kept_online_plan"] <= 2
    assert report["regret"]["matching"]["mean"] >= 0
