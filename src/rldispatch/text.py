"""Wording shared by everything that prints counts."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 day``, ``2 days``; ``many`` for irregular plurals (``plural(2, "entry", "entries")``)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"
