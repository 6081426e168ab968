"""Memory of the service stays bounded whatever the valid requests: nothing a request builds
is kept after it, and large requests are answered a few at a time (the others are told to
retry: 503 and Retry-After)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from rldispatch.service.http.schemas import MAX_DRIVERS_PER_REQUEST, MAX_OPEN_BOOKINGS
from tests.service.helpers import (
    ADMIN_TOKEN,
    ServerProcess,
    auth,
    make_pairwise_model_file,
    suggest_body,
)

CONCURRENT = 4
RSS_BOUND_MB = 400.0
"""RSS after the maximal requests may exceed idle by at most this (one maximal request's
state is about 300 MB while it is answered; before, each thread kept it: 4.8 GB)."""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def wait_until_written(client: httpx.Client, timeout_s: float = 120.0) -> None:
    """Until the decision log holds nothing unwritten (its records hold the requests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get("/rl/status", headers=auth()).json()
        if status["database"]["pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the decision log was not written")


@pytest.mark.slow
def test_rss_after_concurrent_maximal_requests_stays_near_idle(tmp_path: Path) -> None:
    # The known-reward start (pair scores zeroed): it assigns whenever a pair's known reward
    # beats waiting, so the shadow answers a driver; the whole network still runs.
    model = make_pairwise_model_file(
        tmp_path / "pairwise.safetensors", tweak=lambda network: network.pair_out.weight.zero_()
    )
    body = suggest_body(n_drivers=MAX_DRIVERS_PER_REQUEST, n_open=MAX_OPEN_BOOKINGS - 1)
    # The most pressing booking: in the model's visible slots whatever the others.
    body["booking"].update(requested_in_min=5.0, window_opens_in_min=0.0, window_closes_in_min=12.0)
    small = suggest_body(n_drivers=5, n_open=3)
    with (
        # A budget no answer reaches on a loaded machine: the test is about memory.
        ServerProcess(
            tmp_path / "data", model=model, extra_args=("--request-budget-ms", "600000")
        ) as server,
        httpx.Client(base_url=server.url, timeout=600.0) as client,
    ):
        # Shadow mode: the model and the heuristic both answer every request.
        toggled = client.post("/rl/toggle", json={"shadow": True}, headers=auth(ADMIN_TOKEN))
        assert toggled.status_code == 200, toggled.text
        assert client.post("/rl/suggest", json=small, headers=auth()).status_code == 200
        idle = rss_mb(server.process.pid)
        answers: list[dict] = []

        def call(index: int) -> None:
            one = {**body, "booking": {**body["booking"], "id": f"big-{index}"}}
            response = client.post("/rl/suggest", json=one, headers=auth())
            while response.status_code == 503:  # busy: a few large requests at a time
                assert int(response.headers["Retry-After"]) >= 1
                time.sleep(0.5)
                response = client.post("/rl/suggest", json=one, headers=auth())
            assert response.status_code == 200, response.text
            answers.append(response.json())

        after = []
        for _ in range(2):  # twice: what stays does not pile up
            threads = [threading.Thread(target=call, args=(i,)) for i in range(CONCURRENT)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert client.post("/rl/suggest", json=small, headers=auth()).status_code == 200
            wait_until_written(client)
            after.append(rss_mb(server.process.pid))
    assert len(answers) == 2 * CONCURRENT
    assert all(a["reason"] == "shadow_mode" and a["driver_id"] for a in answers)
    assert all(a["shadow_driver_id"] for a in answers), [a["shadow_reason"] for a in answers]
    print(f"RSS idle {idle:.0f} MB, after each batch {after[0]:.0f} and {after[1]:.0f} MB")
    assert max(after) - idle < RSS_BOUND_MB, (idle, after)
