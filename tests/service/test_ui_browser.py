"""The dispatcher's page in a real browser (headless Chromium driven by Playwright) against a
real ``rldispatch serve``: a held-out day is replayed round by round through ``/rl/round`` and
the page shows its drivers and plans, follows each round, lets an admin switch RL and keeps a
read token from doing so; ``/docs`` loads with the service's own assets only.

Screenshots are kept under ``test-artifacts/ui/``. Without Chromium the test skips (saying how
to install it); with ``RLDISPATCH_REQUIRE_BROWSER=1`` (CI) it fails instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import action_of, state_body
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.http.fleet_view import clock
from tests.browser import ARTIFACTS as BROWSER_ARTIFACTS
from tests.browser import CHROMIUM, sync_playwright_or_skip
from tests.service.helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    ServerProcess,
    auth,
    make_pairwise_model_file,
    switch_rl_on,
)

ARTIFACTS = BROWSER_ARTIFACTS / "ui"
UNREACHABLE_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
"""Tiles that cannot load (the discard port, which browsers refuse): the page must work
without a basemap."""
WAIT_MS = 20_000
ROUNDS = 20
"""Rounds of the day replayed before the page is opened (the morning's first hours)."""

pytestmark = pytest.mark.slow


class Day:
    """A held-out day played through the server, one ``/rl/round`` at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scenario = make_preset("geneva", HELD_OUT_SEEDS.start)
        config = EnvConfig(max_drivers=len(self.scenario.drivers))
        self.env = DispatchEnv(preset=None, scenario=self.scenario, config=config)
        self.env.reset(options={"scenario": self.scenario})
        self.start_min = LiveDay.from_preset("geneva").start_min

    def round(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send the state now, apply the answer's assignments, then let the clock move;
        the state sent and the answer."""
        body = state_body(self.env.sim, self.start_min)
        answer = httpx.post(f"{self.url}/rl/round", json=body, headers=auth(), timeout=60)
        assert answer.status_code == 200, answer.text
        served = answer.json()
        for assignment in served["assignments"]:
            action = action_of(self.env, assignment["booking_id"], assignment["driver_id"])
            assert action is not None
            self.env.step(action)
        self.env.step(0)
        return body, served


def _planned_pickups(body: dict[str, Any], answer: dict[str, Any]) -> int:
    planned = sum(1 for d in body["drivers"] for stop in d["plan"] if stop["kind"] == "pickup")
    return planned + len(answer["assignments"])


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/ui")
    page.wait_for_selector("#token-form", state="visible")
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#app", state="visible")


def _wait_for_sequence(page: Any, sequence: int) -> None:
    page.wait_for_selector(f"body[data-sequence='{sequence}']", state="attached", timeout=WAIT_MS)


def test_the_dispatchers_page_in_a_browser(tmp_path: Path) -> None:
    sync_playwright = sync_playwright_or_skip()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    extra = ("--tile-url", UNREACHABLE_TILES)
    with ServerProcess(tmp_path / "data", model=model, extra_args=extra) as server:
        switch_rl_on(server.url)
        version = httpx.get(f"{server.url}/rl/status", headers=auth()).json()["model"]["version"]
        day = Day(server.url)
        sent = [day.round() for _ in range(ROUNDS)]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            try:
                admin = browser.new_page(viewport={"width": 1600, "height": 1000})
                requests: list[str] = []
                admin.on("request", lambda request: requests.append(request.url))
                _sign_in(admin, server.url, ADMIN_TOKEN)

                # The replayed day's drivers and plans, as the last round left them.
                body, answer = sent[-1]
                _wait_for_sequence(admin, ROUNDS)
                assert sum(len(a["assignments"]) for _, a in sent) > ROUNDS // 2
                rows = admin.locator("#fleet-table tbody tr")
                shown = rows.evaluate_all("rows => rows.map(r => r.dataset.driverId)")
                assert shown == [d["id"] for d in body["drivers"]]
                markers = admin.locator(".drv").evaluate_all("m => m.map(e => e.dataset.driverId)")
                assert sorted(markers) == sorted(d["id"] for d in body["drivers"])
                pickups = admin.locator("path.stop-pickup").count()
                assert pickups == _planned_pickups(body, answer) > 0
                assert admin.locator("#kpi-planned").inner_text() == str(pickups)
                open_now = len(body["open_bookings"]) - len(answer["assignments"])
                assert admin.locator(".open-bk").count() == open_now
                assert admin.locator("#clock").inner_text() == clock(body["minute_of_day"])
                decisions = admin.locator("#decisions tbody").inner_text()
                for assignment in answer["assignments"]:
                    assert assignment["booking_id"] in decisions
                assert f"RL {version}" in decisions
                # The tiles cannot load: the page says so and draws the fleet all the same.
                admin.wait_for_selector("#basemap-note", state="visible", timeout=WAIT_MS)
                admin.screenshot(path=str(ARTIFACTS / "1-replayed-day.png"))

                # It follows the next round without a reload.
                body, answer = day.round()
                _wait_for_sequence(admin, ROUNDS + 1)
                assert admin.locator("#clock").inner_text() == clock(body["minute_of_day"])
                assert admin.locator("path.stop-pickup").count() == _planned_pickups(body, answer)
                admin.screenshot(path=str(ARTIFACTS / "2-after-a-round.png"))

                # An admin switches RL off and sets the A/B share.
                admin.wait_for_selector("#admin-panel", state="visible")
                admin.uncheck("#rl-enabled")
                admin.eval_on_selector(
                    "#ab-ratio",
                    "e => { e.value = '40'; e.dispatchEvent(new Event('input')); }",
                )
                admin.click("#apply-switch")
                admin.wait_for_selector("#switch-message.ok", timeout=WAIT_MS)
                status = httpx.get(f"{server.url}/rl/status", headers=auth()).json()
                assert (status["enabled"], status["ab_ratio"]) == (False, 0.4)
                admin.wait_for_function(
                    "document.getElementById('rl-pill').textContent.startsWith('RL off')",
                    timeout=WAIT_MS,
                )
                admin.screenshot(path=str(ARTIFACTS / "3-admin-switched-rl-off.png"))
                assert all(
                    url.startswith(server.url) for url in requests if "127.0.0.1:9/" not in url
                )

                # A read token sees the fleet but not the switch, and the service refuses it.
                reader = browser.new_page(viewport={"width": 1600, "height": 1000})
                _sign_in(reader, server.url, READ_TOKEN)
                _wait_for_sequence(reader, ROUNDS + 1)
                assert reader.locator("#admin-panel").is_hidden()
                assert "needs an admin token" in reader.locator("#switch-message").inner_text()
                refused = reader.evaluate(
                    """async (token) => (await fetch('/rl/toggle', {method: 'POST',
                        headers: {Authorization: 'Bearer ' + token,
                                  'Content-Type': 'application/json'},
                        body: JSON.stringify({enabled: true})})).status""",
                    READ_TOKEN,
                )
                assert refused == 403
                assert (
                    httpx.get(f"{server.url}/rl/status", headers=auth()).json()["enabled"] is False
                )
                reader.screenshot(path=str(ARTIFACTS / "4-read-token.png"))

                # /docs: Swagger UI from the service's own assets.
                docs = browser.new_page()
                loaded: list[str] = []
                docs.on("request", lambda request: loaded.append(request.url))
                docs.goto(f"{server.url}/docs")
                docs.wait_for_selector(".swagger-ui .info", timeout=WAIT_MS)
                assert loaded and all(url.startswith(server.url) for url in loaded)
                docs.screenshot(path=str(ARTIFACTS / "5-docs.png"))
            finally:
                browser.close()
