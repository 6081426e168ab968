"""The dispatcher's page over HTTP (no browser): the page and its assets served by the
service itself, ``/ui/state`` behind the tokens, and the fleet it shows equal to the
simulator's after the answer's assignments, late and at-risk pickups flagged."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rldispatch.cli import main
from rldispatch.domain import LATE_AFTER_REQUESTED_MIN
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.config import DEFAULT_TILE_URL, ServiceConfig
from rldispatch.service.decisions.replay import action_of, state_body
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.http.ui import OWN_ROWS_S
from tests.service.helpers import (
    ADMIN_TOKEN,
    ThreadedServer,
    auth,
    make_pairwise_model_file,
    suggest_body,
    switch_rl_on,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> ThreadedServer:
    with ThreadedServer(tmp_path_factory.mktemp("ui") / "data", tile_url="none") as running:
        yield running


def test_the_page_and_its_assets_are_served_and_hold_no_data(server: ThreadedServer) -> None:
    page = httpx.get(f"{server.url}/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "&quot;tileUrl&quot;: &quot;&quot;" in page.text  # --tile-url none: no basemap
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text)
    assert len(assets) >= 4
    for asset in assets:
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    assert "http" not in " ".join(re.findall(r'(?:src|href)="([^"]+)"', page.text))
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "img-src 'self' data:;" in policy


def test_the_pages_policy_lets_images_come_from_the_tile_server() -> None:
    from rldispatch.service.http.ui import content_security_policy

    policy = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tile.example.org;" in policy
    assert "connect-src 'self';" in policy


def test_docs_load_swagger_ui_from_the_service(server: ThreadedServer) -> None:
    docs = httpx.get(f"{server.url}/docs").text
    assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", docs)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    assert httpx.get(f"{server.url}/redoc").status_code == 404  # it would load a CDN's script


def test_the_state_needs_a_token_and_says_who_reads_it(server: ThreadedServer) -> None:
    assert httpx.get(f"{server.url}/ui/state").status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 30}
    assert httpx.get(f"{server.url}/ui/state", headers=wrong).status_code == 401
    read = httpx.get(f"{server.url}/ui/state", headers=auth()).json()
    admin = httpx.get(f"{server.url}/ui/state", headers=auth(ADMIN_TOKEN)).json()
    assert (read["viewer"]["admin"], admin["viewer"]["admin"]) == (False, True)
    assert read["switch"]["enabled"] is False and read["model"]["loaded"] is False


def test_the_fleet_shown_is_the_simulators_after_the_answer(server: ThreadedServer) -> None:
    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 1)
    env = DispatchEnv(
        preset=None, scenario=scenario, config=EnvConfig(max_drivers=len(scenario.drivers))
    )
    env.reset(options={"scenario": scenario})
    start = LiveDay.from_preset("geneva").start_min
    drivers = [d.id for d in scenario.drivers]
    bookings = [b.id for b in scenario.bookings]
    for _ in range(4):
        body = state_body(env.sim, start)
        answer = httpx.post(f"{server.url}/rl/round", json=body, headers=auth()).json()
        fleet = httpx.get(f"{server.url}/ui/state", headers=auth()).json()["fleet"]
        # The day's own simulator, the answer's assignments made in it at the same moment.
        sim = env.sim.copy()
        for a in answer["assignments"]:
            sim.assign(drivers.index(a["driver_id"]), bookings.index(a["booking_id"]))
        for assignment in answer["assignments"]:
            env.step(action_of(env, assignment["booking_id"], assignment["driver_id"]))
        env.step(0)
    assert answer["assignments"], "the last round must place bookings"
    before = sim.now_min
    assert fleet["minute_of_day"] == pytest.approx(start + before, abs=0.01)
    assert [d["id"] for d in fleet["drivers"]] == [d.id for d in scenario.drivers]
    placed = {a["booking_id"] for a in answer["assignments"]}
    late = 0
    for index, driver in enumerate(fleet["drivers"]):
        pickups = [stop for stop in driver["stops"] if stop["kind"] == "pickup"]
        ids = [scenario.bookings[b].id for b in sim.plans[index]]
        assert [stop["booking_id"] for stop in pickups] == ids
        assert {s["booking_id"] for s in pickups if s["new"]} == placed & set(ids)
        for stop, eta in zip(pickups, sim.plan_start[index], strict=True):
            assert stop["eta_in_min"] == pytest.approx(eta - before, abs=0.051)
        late += sum(stop["late"] for stop in pickups)
    open_ids = {b["id"] for b in fleet["open_bookings"]}
    assert open_ids == {b["id"] for b in body["open_bookings"]} - placed
    assert fleet["counts"]["planned_pickups"] == sum(len(plan) for plan in sim.plans)
    assert fleet["answer"]["placed"] == [
        {"booking_id": a["booking_id"], "driver_id": a["driver_id"]} for a in answer["assignments"]
    ]
    assert late == sim.planned_late_count()


def test_late_and_at_risk_pickups_and_bookings_are_flagged(server: ThreadedServer) -> None:
    here = {"lat": 46.2044, "lon": 6.1432}
    far = {"lat": 46.30, "lon": 6.25}  # about 14 km away: half an hour's drive
    near = {"lat": 46.2050, "lon": 6.1440}

    def pickup(booking_id: str, requested_in_min: float) -> list[dict]:
        return [
            {
                "kind": "pickup",
                "booking_id": booking_id,
                "location": far,
                "requested_in_min": requested_in_min,
                "window_opens_in_min": 0.0,
                "window_closes_in_min": 120.0,
            },
            {"kind": "dropoff", "booking_id": booking_id, "location": here},
        ]

    def booking(booking_id: str, requested: float, closes: float, where: dict) -> dict:
        return {
            "id": booking_id,
            "pickup": where,
            "dropoff": here,
            "requested_in_min": requested,
            "window_opens_in_min": requested - 10.0 if requested > 10 else 0.0,
            "window_closes_in_min": closes,
        }

    body = {
        "drivers": [
            {"id": "late", "position": here, "shift_ends_in_min": 400, "plan": pickup("p1", 1)},
            {"id": "ok", "position": here, "shift_ends_in_min": 400, "plan": pickup("p2", 90)},
        ],
        "open_bookings": [
            booking("closing", 5.0, 10.0, {"lat": 46.40, "lon": 6.40}),  # nobody reaches it
            booking("later", 200.0, 240.0, near),
        ],
        "minute_of_day": 600.0,
    }
    answer = httpx.post(f"{server.url}/rl/round", json=body, headers=auth())
    assert answer.status_code == 200, answer.text
    fleet = httpx.get(f"{server.url}/ui/state", headers=auth()).json()["fleet"]
    stops = {
        (d["id"], s["booking_id"]): s for d in fleet["drivers"] for s in d["stops"] if "late" in s
    }
    late_stop = stops[("late", "p1")]
    assert late_stop["late"] and late_stop["late_by_min"] > LATE_AFTER_REQUESTED_MIN
    assert not stops[("ok", "p2")]["late"] and not stops[("ok", "p2")]["at_risk"]
    still_open = {b["id"]: b for b in fleet["open_bookings"]}
    assert still_open["closing"]["at_risk"]  # open, and its window closes in 10 min
    assert not still_open["later"]["at_risk"] and not still_open["later"]["late"]
    flagged = [s for s in stops.values() if s["late"] or s["at_risk"]]
    flagged += [b for b in fleet["open_bookings"] if b["late"] or b["at_risk"]]
    assert fleet["counts"]["late"] + fleet["counts"]["at_risk"] == len(flagged)
    assert np.isclose(fleet["minute_of_day"], 600.0)
    assert fleet["clock"] == "10:00"


def test_the_tile_url_is_a_template_or_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert ServiceConfig.from_env({}).tile_url == DEFAULT_TILE_URL
    assert ServiceConfig.from_env({}, tile_url="none").tile_url == ""
    custom = "https://tiles.example.org/{z}/{x}/{y}.png"
    assert ServiceConfig.from_env({"RLDISPATCH_TILE_URL": custom}).tile_url == custom
    for bad in ("https://tiles.example.org/tile.png", "javascript:{z}{x}{y}"):
        with pytest.raises(ValueError, match="tile-url"):
            ServiceConfig.from_env({}, tile_url=bad)
    assert main(["serve", "--tile-url", "https://example.org/tile.png"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "tile-url" in error


def test_tile_url_reaches_the_workers(tmp_path: Path) -> None:
    from rldispatch.service.config import config_environ

    config = ServiceConfig.from_env({}, tile_url="none", data_dir=tmp_path)
    assert ServiceConfig.from_env(config_environ(config)).tile_url == ""


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_worker_shows_the_newer_state_another_answered_from_the_log(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    database = (
        f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_schema_url")
    )
    scenario = make_preset("geneva", HELD_OUT_SEEDS.start + 2)
    env = DispatchEnv(
        preset=None, scenario=scenario, config=EnvConfig(max_drivers=len(scenario.drivers))
    )
    env.reset(options={"scenario": scenario})
    start = LiveDay.from_preset("geneva").start_min
    with (
        ThreadedServer(tmp_path / "a", database_url=database) as first,
        ThreadedServer(tmp_path / "b", database_url=database) as second,
    ):
        for answering, other in ((first, second), (second, first), (first, second)):
            # Rows within OWN_ROWS_S of a worker's own state count as its own: the rounds of
            # two workers are told apart when they are further apart than that.
            time.sleep(2 * OWN_ROWS_S)
            body = state_body(env.sim, start)
            answer = httpx.post(f"{answering.url}/rl/round", json=body, headers=auth()).json()
            assert answer["assignments"]
            own = httpx.get(f"{answering.url}/ui/state", headers=auth()).json()
            assert own["fleet"]["origin"] == "worker"
            deadline = time.monotonic() + 10.0
            while True:  # the log is written in the background
                seen = httpx.get(f"{other.url}/ui/state", headers=auth()).json()
                if seen["fleet"] and seen["fleet"]["origin"] == "log":
                    break
                assert time.monotonic() < deadline, seen["fleet"]
                time.sleep(0.05)
            drop = ("origin", "sequence", "received_at")
            theirs = {k: v for k, v in seen["fleet"].items() if k not in drop}
            mine = {k: v for k, v in own["fleet"].items() if k not in drop}
            # The round's end is in its answer, not in the rows of its assignments.
            assert theirs.pop("answer") == {**mine.pop("answer"), "ended": None}
            assert theirs == mine
            placed = {a["booking_id"] for a in answer["assignments"]}
            assert placed <= {d["booking_id"] for d in seen["decisions"]}
            for a in answer["assignments"]:
                env.step(action_of(env, a["booking_id"], a["driver_id"]))
            env.step(0)


def test_the_wheel_takes_every_asset_of_the_page() -> None:
    import fnmatch
    import tomllib

    import rldispatch.service.http

    root = Path(__file__).resolve().parents[2]
    settings = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = settings["package-data"]["rldispatch.service.http"]
    package = Path(rldispatch.service.http.__file__).parent
    assets = [p.relative_to(package).as_posix() for p in (package / "static").rglob("*")]
    files = [name for name in assets if (package / name).is_file()]
    assert {"static/ui.html", "static/leaflet/leaflet.js", "static/leaflet/LICENSE"} <= set(files)
    assert "static/swagger-ui/swagger-ui-bundle.js" in files
    for name in files:  # fnmatch's * crosses folders; setuptools' does not
        assert any(
            fnmatch.fnmatch(name, pattern) and name.count("/") == pattern.count("/")
            for pattern in patterns
        ), name


def test_a_suggestion_is_shown_with_its_arm_and_lookahead(tmp_path: Path) -> None:
    model = make_pairwise_model_file(tmp_path / "pairwise.safetensors")
    with ThreadedServer(tmp_path / "data", model=model, lookahead=2) as running:
        switch_rl_on(running.url)
        body = suggest_body(booking_id="asked", n_drivers=4, n_open=2)
        answer = httpx.post(f"{running.url}/rl/suggest", json=body, headers=auth()).json()
        assert answer["source"] == "rl" and answer["driver_id"]
        state = httpx.get(f"{running.url}/ui/state", headers=auth()).json()
    (decision,) = state["decisions"]
    assert decision["kind"] == "suggest" and decision["booking_id"] == "asked"
    assert (decision["arm"], decision["lookahead"]) == ("rl", True)
    assert decision["model_version"] == answer["model_version"]
    fleet = state["fleet"]
    assert fleet["kind"] == "suggest"
    assert fleet["answer"]["placed"] == [{"booking_id": "asked", "driver_id": answer["driver_id"]}]
    driver = next(d for d in fleet["drivers"] if d["id"] == answer["driver_id"])
    (stop,) = [s for s in driver["stops"] if s["booking_id"] == "asked" and s["kind"] == "pickup"]
    assert stop["new"] and stop["eta_in_min"] == pytest.approx(answer["pickup_in_min"], abs=0.051)
    assert {b["id"] for b in fleet["open_bookings"]} == {b["id"] for b in body["open_bookings"]}
    assert state["lookahead"]["candidates"] == 2
