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
