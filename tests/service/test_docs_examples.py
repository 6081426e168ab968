"""docs/service.md's examples, run against a real server: its ``curl`` commands are run by
bash as written (the port aside), and the answers it shows are the answers the service gives,
so the page cannot drift from the service."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rldispatch.agents.pairwise.model_file import save_untrained_model
from tests.service.helpers import ADMIN_TOKEN, READ_TOKEN, ServerProcess, auth, switch_rl_on

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"
DOCUMENTED_PORT = "127.0.0.1:8000"
VARYING = {"latency_ms", "model_version"}
"""Fields of an answer that differ from run to run or model file to model file."""


def fenced_blocks(text: str) -> list[tuple[str, str, str]]:
    """Each fenced block of the page: (the heading above it, its language, its text)."""
    blocks, heading = [], ""
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            language, body = line[3:].strip(), []
            for inner in lines:
                if inner.startswith("```"):
                    break
                body.append(inner)
            blocks.append((heading, language, "\n".join(body)))
    return blocks


def block(heading: str, starts: str) -> str:
    """The one block under ``heading`` whose text starts with ``starts``."""
    found = [
        text
        for where, _, text in fenced_blocks(DOCS.read_text(encoding="utf-8"))
        if where == heading and text.lstrip().startswith(starts)
    ]
    assert len(found) == 1, (heading, starts, len(found))
    return found[0]


def documented_json(heading: str) -> Any:
    """The JSON answer shown under ``heading`` (a ``...`` standing for more items dropped)."""
    text = block(heading, "{")
    return json.loads(re.sub(r",\s*\.\.\.", "", text))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("docs")
    model = save_untrained_model(data / "pairwise.safetensors", seed=0)
    with ServerProcess(data, model=model) as server:
        yield server


def run_curl(command: str, server: ServerProcess) -> dict[str, Any]:
    """A documented ``curl`` command run by bash, sent to ``server``; its answer as JSON."""
    assert DOCUMENTED_PORT in command
    result = subprocess.run(
        ["bash", "-c", command.replace(DOCUMENTED_PORT, f"127.0.0.1:{server.port}")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TOKEN": READ_TOKEN, "ADMIN": ADMIN_TOKEN},
        check=True,
    )
    return json.loads(result.stdout)


def same_shape_and_values(documented: Any, answered: Any, where: str = "") -> None:
    """``answered`` has ``documented``'s keys and values, those in :data:`VARYING` aside
    (their presence is checked); a documented list of one item stands for the items shown."""
    if isinstance(documented, dict):
        assert isinstance(answered, dict), where
        assert set(answered) == set(documented), (where, set(answered) ^ set(documented))
        for key, value in documented.items():
            if key not in VARYING:
                same_shape_and_values(value, answered[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(answered, list) and len(answered) >= len(documented), where
        for k, (shown, given) in enumerate(zip(documented, answered, strict=False)):
            same_shape_and_values(shown, given, f"{where}[{k}]")
    else:
        assert answered == documented, where


@pytest.fixture(scope="module")
def answers(server: ServerProcess) -> dict[str, Any]:
    """Every documented call, in the page's order: RL switched on, a round, a suggestion of
    the round's booking on the same state, its outcome, the metrics."""
    toggled = run_curl(block("`POST /rl/toggle` (admin token)", "curl"), server)
    state_command = block("The state: drivers, plans, open bookings", "curl")
    round_answer = run_curl(state_command, server)
    state = json.loads(state_command.split("-d '", 1)[1].rsplit("'", 1)[0])
    booking = state.pop("open_bookings")[0]
    suggestion = httpx.post(
        f"{server.url}/rl/suggest",
        json={**state, "open_bookings": [], "booking": booking},
        headers=auth(),
        timeout=30,
    ).json()
    outcome = run_curl(block("`POST /rl/outcome` (token)", "curl"), server)
    metrics = httpx.get(f"{server.url}/rl/metrics", headers=auth(), timeout=30).json()
    status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
    return {
        "status": status,
        "toggle": toggled,
        "round": round_answer,
        "suggest": suggestion,
        "outcome": outcome,
        "metrics": metrics,
    }


def test_the_toggle_example_switches_rl_on(answers: dict[str, Any]) -> None:
    assert answers["toggle"]["enabled"] is True and answers["toggle"]["ab_ratio"] == 0.5


def test_the_round_example_is_the_services_answer(answers: dict[str, Any]) -> None:
    same_shape_and_values(documented_json("`POST /rl/round` (token)"), answers["round"])


def test_the_suggest_example_is_the_services_answer(answers: dict[str, Any]) -> None:
    documented = documented_json("`POST /rl/suggest` (token)")
    answered = answers["suggest"]
    arm = answered["arm"]  # the A/B arm is drawn from the booking id: the page shows rl's
    assert arm == documented["arm"], "the example booking falls in the other arm"
    same_shape_and_values(documented, answered)


def test_the_outcome_example_is_accepted(answers: dict[str, Any]) -> None:
    outcome = answers["outcome"]
    assert outcome["accepted"] is True and outcome["booking_id"] == "b-1042"
    assert outcome["pickup_delay_min"] == 7.5 and outcome["late"] is True


def test_the_metrics_example_has_the_services_fields_and_counts(answers: dict[str, Any]) -> None:
    documented = json.loads(
        "{"
        + block("`GET /rl/metrics` (token) and `GET /metrics` (token, Prometheus)", '"ab"')
        + "}"
    )
    metrics = answers["metrics"]
    ab = metrics["ab"]
    assert set(ab) - {"error"} == set(documented["ab"])
    for arm in ("rl", "heuristic"):
        assert set(ab["arms"][arm]) == set(documented["ab"]["arms"][arm])
    assert set(ab["rl_by_model_version"][0]) == set(documented["ab"]["rl_by_model_version"][0])
    # one suggestion and one round were answered: counted apart
    assert (metrics["suggestions"], metrics["rounds"]) == (1, 1)
    rl = ab["arms"]["rl"]
    versions = ab["rl_by_model_version"]
    for name in ("suggestions", "bookings", "outcomes"):
        assert rl[name] == sum(version[name] for version in versions), name
    assert rl["outcomes"] == 1


def test_the_status_examples_log_has_the_services_fields(answers: dict[str, Any]) -> None:
    documented = json.loads("{" + block("`GET /rl/status` (token)", '"log"') + "}")["log"]
    log = answers["status"]["log"]
    assert set(log) == set(documented)
    assert set(log["pruned"]) <= set(documented["pruned"])  # nothing pruned: no retention here
    assert log["suggestions"] == 2  # the round's assignment and the suggestion


def test_the_shared_rides_example_is_the_services_answer(server: ServerProcess) -> None:
    heading = "Shared rides, places by kind, ride limits, breaks: plans of stops"
    switch_rl_on(server.url)  # the pairwise model answers rounds of plans of stops too
    answered = run_curl(block(heading, "curl"), server)
    same_shape_and_values(documented_json(heading), answered)
