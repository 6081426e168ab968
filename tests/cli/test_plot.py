"""``rldispatch plot``: bad input is one line and exit code 2."""

from __future__ import annotations

import pytest

from rldispatch.cli import main


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)), "not UTF-8 text"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a report JSON (no 'policies' object)"),
        (b'{"policies": {"nearest": 3}}', "not a report JSON"),
    ],
    ids=["binary", "not-json", "a-list", "wrong-shape"],
)
def test_plot_report_on_a_file_that_is_not_a_report(tmp_path, capsys, content, expected):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    code = main(["plot", "report", str(path), "--out", str(tmp_path / "chart.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expected in err[0] and str(path) in err[0]
    assert not (tmp_path / "chart.png").exists()


def test_plot_routes_writes_panels_and_a_json_summary(tmp_path) -> None:
    import json

    out, summary = tmp_path / "routes.png", tmp_path / "routes.json"
    code = main(
        ["plot", "routes", "--policy", "nearest", "--preset", "classic", "--out", str(out)]
        + ["--per-driver", "--json", str(summary)]
    )
    assert code == 0
    written = json.loads(summary.read_text())
    assert written["kind"] == "routes" and written["drivers"] == 10
    assert written["png"] == [str(out), str(tmp_path / "routes-drivers.png")]
    assert (tmp_path / "routes-drivers.png").stat().st_size > 1000


def test_plot_training_on_a_broken_metrics_file_is_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "training_metrics.json"
    path.write_bytes(b"\xff\xfe garbage")
    code = main(["plot", "training", str(path), "--out", str(tmp_path / "c.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not readable training metrics" in err[0]
