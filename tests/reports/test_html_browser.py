"""The report page in a real browser (headless Chromium driven by Playwright), opened from the
file with every network request refused: it shows its table, chart and map, a click picks
out a driver's route, the wheel zooms, and no script fails.

Screenshots are kept under ``test-artifacts/reports/``. Without Chromium the test skips;
with ``RLDISPATCH_REQUIRE_BROWSER=1`` (CI) it fails instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.html import paired_verdict, write_report_page
from rldispatch.reports.report import build_report
from rldispatch.reports.route_map import record_routes
from rldispatch.scenarios.presets import make_preset
from rldispatch.training.evaluation import evaluate_policies
from tests.browser import ARTIFACTS as BROWSER_ARTIFACTS
from tests.browser import CHROMIUM, sync_playwright_or_skip

ARTIFACTS = BROWSER_ARTIFACTS / "reports"

pytestmark = pytest.mark.slow


def test_the_report_page_works_offline_in_a_browser(tmp_path: Path) -> None:
    sync_playwright = sync_playwright_or_skip()
    days = [make_preset("geneva", seed) for seed in range(5)]
    policies = {name: make_baseline(name) for name in ("insertion", "nearest")}
    report = build_report(
        "geneva", list(range(5)), evaluate_policies(policies, days), [("insertion", "nearest")]
    )
    routes = record_routes(policies["insertion"], days[0])
    page_path = write_report_page(tmp_path / "report.html", report, [routes])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            requested: list[str] = []
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console", lambda message: message.type == "error" and errors.append(message.text)
            )

            def refuse_the_network(route: Any) -> None:
                if route.request.url.startswith("file:"):
                    route.continue_()
                    return
                requested.append(route.request.url)
                route.abort()

            page.route("**/*", refuse_the_network)
            page.goto(page_path.as_uri())
            assert page.locator("table").count() == 2  # every policy, the paired differences
            _, words = paired_verdict(
                report["paired"]["insertion_vs_nearest"], "insertion", "nearest"
            )
            assert page.get_by_text(words).is_visible()
            chart = page.locator("img.chart")
            assert chart.evaluate("image => image.naturalWidth") > 500  # decoded from the page
            drivers = page.locator("svg g.driver")
            assert drivers.count() == len(routes.scenario.drivers)
            page.screenshot(path=str(ARTIFACTS / "1-report-page.png"), full_page=True)

            first = routes.scenario.drivers[0].id
            page.locator(f'li[data-driver="{first}"]').click()
            assert page.locator("svg g.driver.dim").count() == drivers.count() - 1
            assert page.locator(f'svg g.driver[data-driver="{first}"].dim').count() == 0
            width = page.evaluate("document.querySelector('svg').viewBox.baseVal.width")
            page.locator(".map svg").hover()
            page.mouse.wheel(0, -300)
            page.wait_for_function(f"document.querySelector('svg').viewBox.baseVal.width < {width}")
            page.locator(".map").screenshot(path=str(ARTIFACTS / "2-one-driver-zoomed.png"))
            page.locator(f'li[data-driver="{first}"]').click()  # again: every route
            assert page.locator("svg g.driver.dim").count() == 0
        finally:
            browser.close()
    assert requested == [] and errors == []
