"""Swapping models without a restart: checked first, confined to the models folder, a
challenger beside the champion, every instance following."""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rldispatch.agents.dqn.model_file import load_model
from rldispatch.service.decisions.ab import serves_challenger
from rldispatch.service.models.model_holder import ModelPathRefused, resolve_model_path
from tests.service.helpers import (
    ADMIN_TOKEN,
    ThreadedServer,
    auth,
    make_model_file,
    make_pairwise_model_file,
    suggest_body,
)

ADMIN = auth(ADMIN_TOKEN)


def never_waits(network) -> None:
    network.head.bias[0] = -1e3  # the RL arm always answers


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    make_model_file(folder / "champion.safetensors", seed=1, tweak=never_waits)
    make_model_file(folder / "challenger.safetensors", seed=2, tweak=never_waits)
    make_pairwise_model_file(folder / "pairwise.safetensors", seed=3)
    nested = b"[" * 50_000 + b"]" * 50_000
    (folder / "broken.safetensors").write_bytes(struct.pack("<Q", len(nested)) + nested)
    return folder


def version_of(path: Path) -> str:
    return load_model(path).metadata.version


@pytest.fixture
def server(tmp_path: Path, models: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path / "data", model=models / "champion.safetensors") as server:
        yield server


def test_a_model_path_must_lie_in_the_models_folder(models: Path, tmp_path: Path) -> None:
    assert resolve_model_path(models, "champion.safetensors") == models / "champion.safetensors"
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    (models / "link.safetensors").symlink_to(outside)
    for path in ("../elsewhere.safetensors", str(outside), "link.safetensors", "/etc/passwd"):
        with pytest.raises(ModelPathRefused):
            resolve_model_path(models, path)


def test_swapping_the_champion_serves_the_new_model_at_once(
    server: ThreadedServer, models: Path
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=ADMIN)
        before = client.post("/rl/suggest", json=suggest_body("s1"), headers=auth()).json()
        assert before["model_version"] == version_of(models / "champion.safetensors")
        swapped = client.put(
            "/rl/models/champion", json={"path": "challenger.safetensors"}, headers=ADMIN
        )
        assert swapped.status_code == 200, swapped.text
        new_version = version_of(models / "challenger.safetensors")
        assert swapped.json()["champion"]["version"] == new_version
        after = client.post("/rl/suggest", json=suggest_body("s2"), headers=auth()).json()
        assert (after["model_version"], after["source"]) == (new_version, "rl")
        pairwise = client.put(
            "/rl/models/champion", json={"path": "pairwise.safetensors"}, headers=ADMIN
        )
        assert pairwise.json()["champion"]["kind"] == "pairwise"
        answer = client.post("/rl/suggest", json=suggest_body("s3", n_drivers=40), headers=auth())
        assert answer.json()["model_version"].startswith("pairwise")
        status = client.get("/rl/status", headers=auth()).json()
        assert status["model"]["path"] == str(models / "pairwise.safetensors")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("broken.safetensors", "nested too deep"),
        ("missing.safetensors", "no file"),
        ("../../etc/passwd", "outside the models folder"),
        ("notes.txt", "not a model file"),
    ],
)
def test_a_bad_model_is_refused_and_the_old_one_keeps_serving(
    server: ThreadedServer, models: Path, path: str, words: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        refused = client.put("/rl/models/champion", json={"path": path}, headers=ADMIN)
        assert refused.status_code == 422
        assert words in refused.json()["message"]
        # One line naming the field once: "path: ...", never "path: path: ...".
        assert refused.json()["message"].startswith("path: ")
        assert not refused.json()["message"].startswith("path: path:")
        assert refused.json()["detail"][0]["loc"] == ["body", "path"]
        status = client.get("/rl/status", headers=auth()).json()
    assert status["model"]["version"] == version_of(models / "champion.safetensors")
    assert status["state_version"] == 0  # nothing was written to the switch


def test_a_read_token_cannot_swap_models(server: ThreadedServer) -> None:
    response = httpx.put(
        f"{server.url}/rl/models/champion",
        json={"path": "challenger.safetensors"},
        headers=auth(),
        timeout=30,
    )
    assert response.status_code == 403


def test_a_challenger_answers_its_share_and_gets_its_own_outcomes(
    server: ThreadedServer, models: Path
) -> None:
    champion = version_of(models / "champion.safetensors")
    challenger = version_of(models / "challenger.safetensors")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=ADMIN)
        started = client.put(
            "/rl/models/challenger",
            json={"path": "challenger.safetensors", "ratio": 0.5},
            headers=ADMIN,
        )
        assert started.json()["challenger"]["version"] == challenger
        expected: dict[str, int] = {champion: 0, challenger: 0}
        for index in range(40):
            booking_id = f"c-{index}"
            answer = client.post(
                "/rl/suggest", json=suggest_body(booking_id, seed=index), headers=auth()
            ).json()
            version = challenger if serves_challenger(booking_id, 0.5) else champion
            assert answer["model_version"] == version
            expected[version] += 1
            outcome = {
                "booking_id": booking_id,
                "requested_pickup_at": an_hour_ago.isoformat(),
                "picked_up_at": (an_hour_ago + timedelta(minutes=index % 9)).isoformat(),
                "distance_km": 3.0,
            }
            assert client.post("/rl/outcome", json=outcome, headers=auth()).status_code == 202
        metrics = client.get("/rl/metrics", headers=auth()).json()
        by_version = {row["model_version"]: row for row in metrics["ab"]["rl_by_model_version"]}
        for version, count in expected.items():
            assert by_version[version]["suggestions"] == by_version[version]["outcomes"] == count
        assert 0 < expected[challenger] < 40
        body = suggest_body("r-0")
        round_body = {key: value for key, value in body.items() if key != "booking"}
        round_body["open_bookings"] = [body["booking"], *body["open_bookings"]]
        played = client.post("/rl/round", json=round_body, headers=auth())
        assert played.status_code == 200, played.text
        assert played.json()["model_version"] == champion  # a round is the champion's
        stopped = client.delete("/rl/models/challenger", headers=ADMIN)
        assert stopped.json()["challenger"] is None
        answer = client.post("/rl/suggest", json=suggest_body("c-0"), headers=auth()).json()
        assert answer["model_version"] == champion


def test_a_swap_on_one_instance_reaches_the_other(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two apps with their own model holders, sharing only the database: the instance that
    swaps installs the model itself, so the log line comes from the one that followed."""
    database_url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    champion = models / "champion.safetensors"
    caplog.set_level(logging.INFO, logger="rldispatch")
    with (
        ThreadedServer(tmp_path / "a", model=champion, database_url=database_url) as a,
        ThreadedServer(tmp_path / "b", model=champion, database_url=database_url) as b,
    ):
        swapped = httpx.put(
            f"{a.url}/rl/models/champion",
            json={"path": "challenger.safetensors"},
            headers=ADMIN,
            timeout=30,
        )
        assert swapped.status_code == 200
        wanted = version_of(models / "challenger.safetensors")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status = httpx.get(f"{b.url}/rl/status", headers=auth(), timeout=30).json()
            if status["model"]["version"] == wanted:
                break
            time.sleep(0.05)
        assert status["model"]["version"] == wanted
        assert "champion now serving" in caplog.text


def test_a_swap_the_database_does_not_save_changes_nothing(tmp_path: Path, models: Path) -> None:
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    champion = models / "champion.safetensors"
    with ThreadedServer(tmp_path, model=champion, database_url=down) as server:
        response = httpx.put(
            f"{server.url}/rl/models/champion",
            json={"path": "challenger.safetensors"},
            headers=ADMIN,
            timeout=30,
        )
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
    assert response.status_code == 503 and "not saved" in response.json()["detail"]
    assert status["model"]["version"] == version_of(champion)
