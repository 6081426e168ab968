"""The decisions: the manager (live state, suggestion, dispatch round, fallback, statistics),
the A/B split, the answers, the round's play, the request budget and the replay of states."""
