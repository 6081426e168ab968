"""The service: ``RLDispatchManager`` (live state, suggestion, dispatch round, fallback,
statistics) and, in :mod:`rldispatch.service.http.api`, the FastAPI app around it with auth,
decision log and A/B split. See ``docs/service.md``."""

from rldispatch.service.decisions.ab import ToggleState, assign_arm
from rldispatch.service.decisions.answers import Candidate, RoundAssignment
from rldispatch.service.decisions.manager import (
    FALLBACK_REASONS,
    DispatchRound,
    LiveRequest,
    RLDispatchManager,
    Suggestion,
)
from rldispatch.service.decisions.snapshot import LiveDay, LiveDriver, LiveState

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
