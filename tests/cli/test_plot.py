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


def test_plot_report_html_writes_the_page_of_a_report(tmp_path, capsys) -> None:
    import json

    from rldispatch.policies.baselines import make_baseline
    from rldispatch.reports.report import build_report
    from rldispatch.scenarios.presets import make_preset
    from rldispatch.training.evaluation import evaluate_policies

    days = [make_preset("geneva", seed) for seed in (1, 2)]
    policies = {name: make_baseline(name) for name in ("insertion", "nearest")}
    report = build_report(
        "geneva", [1, 2], evaluate_policies(policies, days), [("insertion", "nearest")]
    )
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["plot", "report", str(path)]) == 2
    assert "give --out PNG, --html PAGE or both" in capsys.readouterr().err
    page = tmp_path / "report.html"
    assert main(["plot", "report", str(path), "--html", str(page)]) == 0
    text = page.read_text()
    assert "insertion − nearest" in text and "data:image/png;base64," in text
    assert f"page written to {page}" in capsys.readouterr().out
