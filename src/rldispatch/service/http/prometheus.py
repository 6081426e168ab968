"""The service's figures in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

from typing import Any

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import FALLBACK_REASONS
from rldispatch.service.decisions.stats import StatsSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.sample(name, labels, value)

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
        self.lines.append(f"{name}{{{label_text}}} {value!r}" if labels else f"{name} {value!r}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    stats: StatsSnapshot,
    state: ToggleState,
    model_loaded: bool,
    store: dict[str, Any],
    uptime_s: float,
) -> str:
    out = _Exposition()
    out.metric(
        "rldispatch_suggestions_total",
        "counter",
        "Suggestions answered, by source.",
        [({"source": s}, float(stats.by_source.get(s, 0))) for s in ("rl", "fallback")],
    )
    out.metric(
        "rldispatch_rounds_total",
        "counter",
        "Dispatch rounds answered, by source.",
        [({"source": s}, float(stats.rounds_by_source.get(s, 0))) for s in ("rl", "fallback")],
    )
    out.metric(
        "rldispatch_fallbacks_total",
        "counter",
        "Suggestions and rounds the fallback answered, by reason.",
        [({"reason": r}, float(stats.fallbacks.get(r, 0))) for r in FALLBACK_REASONS],
    )
    out.metric(
        "rldispatch_ab_suggestions_total",
        "counter",
        "Suggestions in the A/B test, by arm.",
        [({"arm": a}, float(stats.by_arm.get(a, 0))) for a in ("rl", "heuristic")],
    )
    out.metric(
        "rldispatch_model_errors_total", "counter", "Model failures.", [({}, float(stats.errors))]
    )
    out.metric(
        "rldispatch_suggest_latency_seconds",
        "summary",
        "Time to answer a suggestion in the manager (quantiles over the recent window).",
        [
            ({"quantile": q}, (stats.latency_ms[name] or 0.0) / 1e3)
            for q, name in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
        ],
    )
    out.sample("rldispatch_suggest_latency_seconds_sum", {}, float(stats.latency_sum_s))
    out.sample("rldispatch_suggest_latency_seconds_count", {}, float(stats.suggestions))
    out.metric(
        "rldispatch_round_latency_quantile_seconds",
        "gauge",
        "Time to answer a dispatch round in the manager (quantiles over the recent window).",
        [
            ({"quantile": q}, (stats.round_latency_ms.get(name) or 0.0) / 1e3)
            for q, name in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))
        ],
    )
    gauges = (
        ("rldispatch_rl_enabled", "1 when RL may answer.", float(state.enabled)),
        ("rldispatch_shadow_mode", "1 in shadow mode.", float(state.shadow)),
        ("rldispatch_ab_ratio", "Share of bookings in the RL arm.", float(state.ab_ratio)),
        ("rldispatch_model_loaded", "1 when a model is loaded.", float(model_loaded)),
        ("rldispatch_store_available", "1 when the database answers.", float(store["available"])),
        ("rldispatch_store_pending", "Records waiting to be written.", float(store["pending"])),
        (
            "rldispatch_store_pending_bytes",
            "Bytes of JSON waiting to be written.",
            float(store["pending_bytes"]),
        ),
        ("rldispatch_uptime_seconds", "Seconds since the service started.", float(uptime_s)),
    )
    for name, help_text, value in gauges:
        out.metric(name, "gauge", help_text, [({}, value)])
    counters = (
        ("rldispatch_store_written_total", "Records written to the database.", "written"),
        ("rldispatch_store_lost_total", "Records dropped: buffer full or stopped.", "lost"),
        ("rldispatch_store_overflow_total", "Records dropped: buffer full.", "overflow"),
        ("rldispatch_store_write_errors_total", "Failed database writes.", "write_errors"),
    )
    for name, help_text, key in counters:
        out.metric(name, "counter", help_text, [({}, float(store[key]))])
    return out.text()


AB_FIGURES = (
    ("suggestions", "Suggestions and round assignments logged.", "suggestions"),
    ("bookings", "Distinct bookings suggested or assigned.", "bookings"),
    ("outcomes", "Outcomes reported.", "outcomes"),
    ("completion_rate", "Share of the bookings with an outcome.", "completion_rate"),
    ("late_rate", "Share of the outcomes picked up late.", "late_rate"),
    ("mean_pickup_delay_minutes", "Mean pickup delay of the outcomes.", "mean_pickup_delay_min"),
    ("mean_distance_km", "Mean km of the outcomes.", "mean_distance_km"),
)
"""The A/B figures of the decision log, by arm and by model version: (metric suffix, help,
key of :func:`rldispatch.service.log.ab_figures.ab_summary`'s figures)."""


def render_log(size: dict[str, Any], ab: dict[str, Any]) -> str:
    """The decision log's figures: its rows by table (``size``: :func:`log_size`'s) and the
    A/B comparison by arm and by model version (``ab``: ``ab_summary``'s). Figures without
    an outcome yet have no sample."""
    out = _Exposition()
    out.metric(
        "rldispatch_log_rows",
        "gauge",
        "Rows of the decision log, by table.",
        [
            ({"table": table}, float(size[table]))
            for table in ("suggestions", "rounds_without_assignment", "outcomes")
        ],
    )
    for prefix, label, groups in (
        ("rldispatch_ab_arm", "arm", ab["arms"]),
        ("rldispatch_model_version", "model_version", ab["rl_by_model_version"]),
    ):
        for suffix, help_text, key in AB_FIGURES:
            samples = [
                ({label: str(name)}, float(figures[key]))
                for name, figures in sorted(groups.items())
                if figures.get(key) is not None
            ]
            out.metric(f"{prefix}_{suffix}", "gauge", help_text, samples)
    return out.text()
