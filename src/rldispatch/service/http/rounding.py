"""Numbers in the API's answers rounded to what they mean: a distance to 0.1 km, a time to
0.1 min, a learned value or a cost to 0.01, a latency to 0.01 ms, a share to 0.001.

Each is a float type for a response model's field: the answer (and its copy in the decision
log) holds the rounded number, the JSON Schema stays ``number``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _to(digits: int) -> AfterValidator:
    return AfterValidator(lambda value: round(value, digits))


Km = Annotated[float, _to(1)]
"""A distance in km, to 0.1 km."""
Minutes = Annotated[float, _to(1)]
"""A time or a delay in minutes, to 0.1 min."""
Score = Annotated[float, _to(2)]
"""A learned value or a heuristic's cost, to 0.01."""
Milliseconds = Annotated[float, _to(2)]
"""A latency in ms, to 0.01 ms."""
Share = Annotated[float, _to(3)]
"""A rate between 0 and 1, to 0.001."""
