"""The report page: self-contained, the table with which way is better, paired verdicts in
words, the chart inside, and a routes map whose marks match the day."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

from rldispatch.policies.baselines import make_baseline
from rldispatch.reports.html import paired_verdict, report_page, write_report_page
from rldispatch.reports.report import build_report
from rldispatch.reports.route_map import depots, record_routes
from rldispatch.reports.route_svg import clock
from rldispatch.scenarios.presets import make_preset
from rldispatch.training.evaluation import evaluate_policies


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each ``<title>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)


def parse(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


@pytest.fixture(scope="module")
def played() -> tuple[dict, list]:
    days = [replace(make_preset("geneva", seed), name=f"day-{seed}") for seed in range(5)]
    policies = {name: make_baseline(name) for name in ("nearest", "insertion")}
    results = evaluate_policies(policies, days)
    report = build_report("geneva", list(range(5)), results, [("insertion", "nearest")])
    return report, [record_routes(policies["nearest"], days[0])]


def test_the_page_loads_nothing_from_elsewhere(played: tuple[dict, list]) -> None:
    report, route_days = played
    elements = parse(report_page(report, route_days))
    for tag, attrs in elements.tags:
        assert tag not in ("link", "iframe"), tag
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "url(#", "#")), (tag, value)
    images = [attrs for tag, attrs in elements.tags if tag == "img"]
    assert len(images) == 1 and images[0]["src"].startswith("data:image/png;base64,")


def test_the_table_says_which_way_is_better_and_marks_the_best(
    played: tuple[dict, list],
) -> None:
    report, _ = played
    page = report_page(report)
    assert "reward<small>higher is better</small>" in page
    assert "late<small>lower is better</small>" in page
    assert page.count('class="best"') >= 1
    better = "insertion" if report["paired"]["insertion_vs_nearest"]["ci95"][0] > 0 else None
    if better:
        assert "insertion is better than nearest" in page


def test_a_paired_verdict_follows_its_interval() -> None:
    assert paired_verdict({"ci95": [1.0, 3.0]}, "a", "b") == ("better", "a is better than b")
    assert paired_verdict({"ci95": [-3.0, -1.0]}, "a", "b") == ("worse", "a is worse than b")
    assert paired_verdict({"ci95": [-1.0, 1.0]}, "a", "b")[0] == "unsure"
    assert (
        "not judged (only 2 days)"
        in paired_verdict({"ci95": None, "reason": "only 2 days"}, "a", "b")[1]
    )


def test_the_map_draws_each_driver_its_legs_and_one_ring_per_late_place(
    played: tuple[dict, list],
) -> None:
    report, route_days = played
    day = route_days[0]
    elements = parse(report_page(report, route_days))
    groups = [attrs for tag, attrs in elements.tags if attrs.get("class") == "driver"]
    assert [group["data-driver"] for group in groups] == [d.id for d in day.scenario.drivers]
    loaded = [attrs for tag, attrs in elements.tags if tag == "line" and "marker-end" in attrs]
    served = sum(len(route) for route in day.routes)
    assert 0 < len(loaded) <= served  # a ride whose pickup is its drop-off draws no leg
    late_places = {
        tuple(np.round(day.scenario.bookings[b].pickup, 6)) for b in np.flatnonzero(day.late)
    }
    rings = [attrs for tag, attrs in elements.tags if tag == "circle" and attrs.get("r") == "7"]
    assert day.late.any()
    assert len(rings) == len(late_places)
    late_titles = [title for title in elements.titles if title.startswith("late pickup: ")]
    assert sum(title.count(" picked up ") for title in late_titles) == int(day.late.sum())
    depot_titles = [title for title in elements.titles if title.startswith("depot ")]
    assert len(depot_titles) == len(depots(day.scenario))


def test_clock_times_start_at_the_days_start_hour() -> None:
    assert clock(0.0, 6.0) == "06:00"
    assert clock(95.4, 6.0) == "07:35"
    assert clock(20 * 60, 6.0) == "02:00"


def test_the_page_is_written_atomically(played: tuple[dict, list], tmp_path) -> None:
    report, _ = played
    path = write_report_page(tmp_path / "report.html", report, title="geneva <days>")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<title>geneva &lt;days&gt;</title>" in text
    assert list(tmp_path.iterdir()) == [path]
