"""What every plot shares: atomic PNG writing and the qualitative palette."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from rldispatch.files import atomic_write_bytes

QUALITATIVE_COLORS = (
    "#4477AA",
    "#EE6677",
    "#228833",
    "#CCBB44",
    "#66CCEE",
    "#AA3377",
    "#BBBBBB",
    "#000000",
)
"""Paul Tol's 'bright' qualitative scheme (colour-blind safe), then black."""


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())
