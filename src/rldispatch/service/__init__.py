"""The service: ``RLDispatchManager`` (live state, suggestion, dispatch round, fallback,
statistics) and, in :mod:`rldispatch.service.api`, the FastAPI app around it with auth,
decision log and A/B split. See ``docs/service.md``."""

from rldispatch.service.ab import ToggleState, assign_arm
from rldispatch.service.answers import Candidate, RoundAssignment
from rldispatch.service.manager import (
    FALLBACK_REASONS,
    DispatchRound,
    LiveRequest,
    RLDispatchManager,
    Suggestion,
)
from rldispatch.service.snapshot import LiveDay, LiveDriver, LiveState

__all__ = [
    "FALLBACK_REASONS",
    "Candidate",
    "DispatchRound",
    "LiveDay",
    "LiveDriver",
    "LiveRequest",
    "LiveState",
    "RLDispatchManager",
    "RoundAssignment",
    "Suggestion",
    "ToggleState",
    "assign_arm",
]
