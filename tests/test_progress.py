"""Progress bars are drawn on a terminal only."""

from __future__ import annotations

import io
import sys

import pytest

from rldispatch.parallel import parallel_map
from rldispatch.progress import on_terminal, progress_bar


def _draw(count: int) -> None:
    bar = progress_bar(total=count, desc="steps")
    for _ in range(count):
        bar.update()
    bar.close()


class Terminal(io.StringIO):
    """A stderr that says it is a terminal and keeps what is written to it."""

    def isatty(self) -> bool:
        return True


def test_with_stderr_in_a_file_no_bar_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    assert not on_terminal()
    _draw(50)
    assert parallel_map(abs, [-1, -2, -3], progress=True, label="days") == [1, 2, 3]
    assert log.getvalue() == ""


def test_on_a_terminal_the_bar_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert on_terminal()
    _draw(3)
    assert "steps" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert progress_bar(False, total=3).disable
