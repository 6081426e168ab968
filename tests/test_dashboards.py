"""The Grafana dashboard and its provisioning: every panel's PromQL names metrics (and labels)
that a real ``/metrics`` answer of the service holds, and the provisioning files, Prometheus'
scrape and ``compose.yaml`` point at each other. (No Grafana or Docker engine here: the JSON
is checked, not rendered.)"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from tests.service.helpers import (
    ADMIN_TOKEN,
    ThreadedServer,
    auth,
    make_pairwise_model_file,
    suggest_body,
)

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rldispatch.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"

PROMQL_WORDS = {
    # aggregations, functions and keywords the dashboard may use
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "by", "without",
    "rate", "irate", "increase", "delta", "deriv", "histogram_quantile", "clamp_min",
    "clamp_max", "abs", "round", "time", "vector", "scalar", "avg_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "and", "or", "unless", "on",
    "ignoring", "group_left", "group_right", "offset", "bool", "label_replace",
}  # fmt: skip
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? ")


def panels() -> list[dict]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        found += [panel, *panel.get("panels", [])]
    return [panel for panel in found if panel["type"] != "row"]


def exported_series(text: str) -> dict[str, set[str]]:
    """Each metric name of a Prometheus text answer, with the label names of its samples."""
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = {pair.split("=")[0] for pair in (match["labels"] or "").split(",") if pair}
        series.setdefault(match["name"], set()).update(labels)
    return series


def referenced(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the label names a PromQL expression refers to."""
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)) - PROMQL_WORDS
    return {word for word in words if not word.startswith("$")}, labels


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """``/metrics`` of a real server that answered suggestions in both A/B arms, a round and
    an outcome for each suggestion, so every family has its labelled samples; and the
    round's assignments."""
    folder = tmp_path_factory.mktemp("dashboards")
    model = make_pairwise_model_file(folder / "pairwise.safetensors")
    with ThreadedServer(folder / "data", model=model) as server:
        admin = auth(ADMIN_TOKEN)
        toggle = {"enabled": True, "ab_ratio": 0.5}
        assert httpx.post(f"{server.url}/rl/toggle", json=toggle, headers=admin).status_code == 200
        answered = []
        for index in range(12):
            body = suggest_body(booking_id=f"b{index}", seed=index)
            answer = httpx.post(f"{server.url}/rl/suggest", json=body, headers=auth(), timeout=60)
            assert answer.status_code == 200, answer.text
            answered.append(answer.json())
        assert {a["arm"] for a in answered} == {"rl", "heuristic"}
        round_body = {key: value for key, value in body.items() if key != "booking"}
        played = httpx.post(f"{server.url}/rl/round", json=round_body, headers=auth())
        assert played.status_code == 200, played.text
        now = datetime.now(UTC)
        for answer in answered:
            outcome = {
                "booking_id": answer["booking_id"],
                "driver_id": answer["driver_id"] or "d1",
                "requested_pickup_at": (now - timedelta(minutes=30)).isoformat(),
                "picked_up_at": (now - timedelta(minutes=23)).isoformat(),
                "distance_km": 4.2,
            }
            reported = httpx.post(f"{server.url}/rl/outcome", json=outcome, headers=auth())
            assert reported.status_code == 202, reported.text
        logged = 12 + len(played.json()["assignments"])
        deadline = time.monotonic() + 30.0
        while True:  # the log is written in the background: until it holds every decision
            text = httpx.get(f"{server.url}/metrics", headers=auth()).text
            if f'rldispatch_log_rows{{table="suggestions"}} {float(logged)!r}' in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
    return text, logged - 12


@pytest.fixture(scope="module")
def metrics_text(served: tuple[str, int]) -> str:
    return served[0]


def test_every_panel_queries_metrics_and_labels_the_service_exports(metrics_text: str) -> None:
    series = exported_series(metrics_text)
    # The families the dashboard is for are there, with their labelled samples.
    for name in ("rldispatch_log_rows", "rldispatch_model_version_late_rate"):
        assert name in series, name
    checked = 0
    for panel in panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names, labels = referenced(target["expr"])
            assert names, (panel["title"], target["expr"])
            for name in names:
                assert name in series, f"{panel['title']}: {name} is not exported"
            known = set().union(*(series[name] for name in names))
            assert labels <= known, f"{panel['title']}: labels {labels - known} not on {names}"
            checked += 1
    assert checked >= 15


def test_a_query_naming_an_unknown_metric_or_label_is_caught(metrics_text: str) -> None:
    series = exported_series(metrics_text)
    names, labels = referenced('sum by (driver) (rate(rldispatch_answers_total{kind="x"}[5m]))')
    assert names == {"rldispatch_answers_total"} and names - set(series)
    assert labels == {"driver", "kind"}


def test_the_log_size_and_ab_figures_are_exported_by_table_arm_and_model_version(
    served: tuple[str, int],
) -> None:
    metrics_text, round_assignments = served
    tables = dict(re.findall(r'^rldispatch_log_rows\{table="(\w+)"\} (\S+)$', metrics_text, re.M))
    assert float(tables["suggestions"]) == 12 + round_assignments
    assert float(tables["outcomes"]) == 12
    arms = re.findall(r'^rldispatch_ab_arm_outcomes\{arm="(\w+)"\} (\S+)$', metrics_text, re.M)
    assert sum(float(count) for _, count in arms) == 12.0
    late = re.findall(r"^rldispatch_ab_arm_late_rate\{arm=\"\w+\"\} (\S+)$", metrics_text, re.M)
    assert late and all(float(rate) == 1.0 for rate in late)  # every pickup 7 min late


def test_provisioning_prometheus_and_compose_point_at_each_other() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = datasource["datasources"]
    uids = {panel["datasource"]["uid"] for panel in panels()}
    uids |= {t["datasource"]["uid"] for panel in panels() for t in panel["targets"]}
    assert uids == {source["uid"]}
    assert source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "rldispatch.yaml").read_text())
    (dashboards,) = provider["providers"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == dashboards["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume.startswith("./deploy"):
                assert (ROOT / volume.split(":")[0]).exists(), volume
    scrape = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    port = services["rldispatch"]["command"][services["rldispatch"]["command"].index("--port") + 1]
    assert job["static_configs"][0]["targets"] == [f"rldispatch:{port}"]
    (secret,) = services["prometheus"]["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "RLDISPATCH_METRICS_TOKEN"}
    assert (
        "${RLDISPATCH_METRICS_TOKEN" in services["rldispatch"]["environment"]["RLDISPATCH_TOKENS"]
    )
