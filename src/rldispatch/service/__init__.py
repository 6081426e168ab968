"""The service: ``RLDispatchManager`` (live state, suggestion, fallback, statistics) and, in
:mod:`rldispatch.service.api`, the FastAPI app around it with auth, decision log and A/B
split. See ``docs/service.md``."""

from rldispatch.service.ab import ToggleState, assign_arm
from rldispatch.service.manager import FALLBACK_REASONS, Candidate, RLDispatchManager, Suggestion
from rldispatch.service.snapshot import LiveDay, LiveRequest

__all__ = [
    "FALLBACK_REASONS",
    "Candidate",
    "LiveDay",
    "LiveRequest",
    "RLDispatchManager",
    "Suggestion",
    "ToggleState",
    "assign_arm",
]
