"""The Markdown tables of README.md and docs/: each is one block, its header row, its
separator row, then its rows, so none renders as a stray line of pipes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def tables(text: str) -> list[tuple[int, list[str]]]:
    """Each run of lines starting with ``|`` outside fenced blocks: (first line number, lines)."""
    runs: list[tuple[int, list[str]]] = []
    fenced = False
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        in_table = not fenced and line.startswith("|")
        if in_table and not current:
            start = number
        if in_table:
            current.append(line)
        elif current:
            runs.append((start, current))
            current = []
    if current:
        runs.append((start, current))
    return runs


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_table_has_its_header_and_separator(page: Path) -> None:
    broken = [
        f"{page.name}:{start}: {lines[0][:60]}"
        for start, lines in tables(page.read_text(encoding="utf-8"))
        if len(lines) < 2 or not SEPARATOR.match(lines[1])
    ]
    assert broken == []
