"""Progress bars, drawn on a terminal only: with stderr redirected to a file (a log, CI) they
are off, so the file gets no carriage-return updates."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def on_terminal() -> bool:
    """Whether stderr, where bars are drawn, is a terminal."""
    return sys.stderr.isatty()


def progress_bar(enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar on stderr (``options`` as tqdm's), drawn when ``enabled`` and on a terminal."""
    return tqdm(disable=not (enabled and on_terminal()), **options)
