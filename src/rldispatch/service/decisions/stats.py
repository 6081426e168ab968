"""Counters and latency percentiles of the suggestions and rounds served, safe across threads."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

LATENCY_WINDOW = 10_000
"""Latency percentiles are over this many most recent suggestions (and, apart, rounds)."""


@dataclass(frozen=True)
class StatsSnapshot:
    suggestions: int
    by_source: dict[str, int]
    fallbacks: dict[str, int]
    errors: int
    latency_ms: dict[str, float | None]
    latency_samples: int
    latency_sum_s: float
    by_arm: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    rounds_by_source: dict[str, int] = field(default_factory=dict)
    round_latency_ms: dict[str, float | None] = field(default_factory=dict)
    round_latency_samples: int = 0


class SuggestionStats:
    """Suggestions by source and arm, rounds by source, fallbacks by reason (of both), model
    errors, and the recent latencies of suggestions and of rounds, each apart."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._suggestions = 0
        self._by_source: Counter[str] = Counter()
        self._by_arm: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._errors = 0
        self._latency_s: deque[float] = deque(maxlen=window)
        self._latency_sum_s = 0.0
        self._rounds = 0
        self._rounds_by_source: Counter[str] = Counter()
        self._round_latency_s: deque[float] = deque(maxlen=window)

    def record(self, source: str, reason: str | None, arm: str | None, latency_s: float) -> None:
        with self._lock:
            self._suggestions += 1
            self._by_source[source] += 1
            if arm is not None:
                self._by_arm[arm] += 1
            if reason is not None:
                self._fallbacks[reason] += 1
            self._latency_s.append(latency_s)
            self._latency_sum_s += latency_s

    def record_round(self, source: str, reason: str | None, latency_s: float) -> None:
        """One ``/rl/round`` answer: a decision over many bookings, not a suggestion."""
        with self._lock:
            self._rounds += 1
            self._rounds_by_source[source] += 1
            if reason is not None:
                self._fallbacks[reason] += 1
            self._round_latency_s.append(latency_s)

    def record_error(self) -> None:
        with self._lock:
            self._errors += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            latencies = np.fromiter(self._latency_s, dtype=np.float64)
            round_latencies = np.fromiter(self._round_latency_s, dtype=np.float64)
            snapshot = StatsSnapshot(
                suggestions=self._suggestions,
                by_source=dict(self._by_source),
                fallbacks=dict(self._fallbacks),
                errors=self._errors,
                latency_ms={},
                latency_samples=latencies.size,
                latency_sum_s=self._latency_sum_s,
                by_arm=dict(self._by_arm),
                rounds=self._rounds,
                rounds_by_source=dict(self._rounds_by_source),
                round_latency_samples=round_latencies.size,
            )
        snapshot.latency_ms.update(_percentiles_ms(latencies))
        snapshot.round_latency_ms.update(_percentiles_ms(round_latencies))
        return snapshot


def _percentiles_ms(latencies_s: np.ndarray) -> dict[str, float | None]:
    return {
        name: float(np.percentile(latencies_s, q) * 1e3) if latencies_s.size else None
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
    }
