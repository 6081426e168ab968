"""``rldispatch solve``: progress while the solver searches, honest gap and units."""

from __future__ import annotations

import time

import pytest

from rldispatch.cli.common import elapsed_bar
from rldispatch.cli.solve import gap_to_best_known, in_units


def test_a_cost_that_rounds_to_the_best_known_has_a_zero_gap_not_minus_zero():
    assert f"{gap_to_best_known(294.2499999, 294.25):.2f}" == "0.00"
    assert gap_to_best_known(300.0, 250.0) == pytest.approx(20.0)


def test_xy_distances_are_not_labelled_km():
    text = "    distance km: 294.25 (empty 106.74)\n   pickup delay: mean 8.27 min"
    assert "km" not in in_units(text, "xy")
    assert "(Euclidean units)" in in_units(text, "xy")
    assert in_units(text, "latlon") == text


def test_elapsed_bar_draws_nothing_off_a_terminal(capfd):
    with elapsed_bar(2.0, "solving"):
        time.sleep(0.5)
    assert capfd.readouterr().err == ""


def test_elapsed_bar_draws_while_the_interpreter_is_busy(capfd, monkeypatch):
    monkeypatch.setattr("rldispatch.cli.common.on_terminal", lambda: True)
    err = ""
    with elapsed_bar(2.0, "solving"):
        give_up = time.monotonic() + 30.0
        while err.count("of ~2 s") < 2 and time.monotonic() < give_up:
            busy_until = time.monotonic() + 0.2
            while time.monotonic() < busy_until:  # holds the interpreter, as OR-Tools does
                pass
            err += capfd.readouterr().err
    err += capfd.readouterr().err
    assert err.count("solving: [") >= 2, "the bar is redrawn while the caller is busy"


def test_elapsed_bar_prints_nothing_when_disabled(capfd):
    with elapsed_bar(1.0, "solving", enabled=False):
        pass
    assert capfd.readouterr().err == ""
