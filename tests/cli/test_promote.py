"""``rldispatch promote``: the paired gate, the registry, and the hand-over to a service."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli import main
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.log.store import create_store_engine
from rldispatch.service.log.tables import service_state
from rldispatch.service.models import registry
from tests.service.helpers import (
    ADMIN_TOKEN,
    ServerProcess,
    auth,
    make_pairwise_model_file,
    seek_detours_and_lateness,
)

SMALL_DAY_BOOKINGS = 24
SMALL_DAY_DRIVERS = 3


def write_small_days(folder: Path, count: int) -> list[str]:
    """``count`` dated days of a few drivers and bookings (cut from the classic preset)."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = [f"2025-10-{k + 1:02d}" for k in range(count)]
    for k, label in enumerate(labels):
        day = make_preset("classic", k)
        small = replace(
            day,
            name=label,
            drivers=day.drivers[:SMALL_DAY_DRIVERS],
            bookings=day.bookings[:SMALL_DAY_BOOKINGS],
        )
        save_scenario(small, folder / f"{label}.json")
    return labels


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good``: the known-reward start (what training starts from); ``bad``: the same with
    the known reward's km and lateness weights negated, so it picks the pairs that add the
    most km and make the most pickups late: worse by construction, whatever the seed."""
    folder = tmp_path_factory.mktemp("models")
    make_pairwise_model_file(
        folder / "good.safetensors", tweak=lambda network: network.pair_out.weight.zero_()
    )

    make_pairwise_model_file(folder / "bad.safetensors", seed=1, tweak=seek_detours_and_lateness)
    return folder


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("days")
    write_small_days(folder, 7)
    return folder


def version_of(path: Path) -> str:
    return load_learned_model(path).version


def promote(tmp_path: Path, days: Path, *options: str) -> int:
    return main(
        [
            "promote",
            "--days",
            str(days),
            "--database-url",
            f"sqlite:///{tmp_path / 'registry.sqlite3'}",
            "--by",
            "tester",
            "--json",
            str(tmp_path / "decision.json"),
            *options,
        ]
    )


def test_a_better_challenger_is_promoted_and_recorded(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
    )
    assert code == 0
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["decision"] == "promoted" and decision["role"] == "champion"
    assert decision["held_out_days"] == [f"2025-10-0{k}" for k in range(3, 8)]
    assert decision["ci95"][0] > 0.0
    assert decision["challenger"]["mean_reward"] > decision["champion"]["mean_reward"]
    out = capsys.readouterr().out
    assert "promoted: the 95% CI" in out
    engine = create_store_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    champion = registry.current_champion(engine)
    engine.dispose()
    assert champion is not None
    assert champion.version == version_of(models / "good.safetensors")
    assert champion.parent_version == version_of(models / "bad.safetensors")
    assert champion.sha256 == registry.file_sha256(models / "good.safetensors")
    assert champion.promoted_by == "tester"
    assert champion.training_days == {
        "source": "days folder",
        "folder": str(days),
        "days": ["2025-10-01", "2025-10-02"],
    }
    assert champion.report["reward_diff_mean"] == decision["reward_diff_mean"]


def test_a_worse_challenger_is_refused_with_the_figures(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "bad.safetensors"),
        "--champion",
        str(models / "good.safetensors"),
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "refused: the 95% CI" in out
    assert "mean reward per day: challenger" in out and "p = " in out and "(5 days)" in out
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["decision"] == "refused" and decision["ci95"][1] < 0.0
    engine = create_store_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    assert registry.current_champion(engine) is None
    [refused] = registry.entries(engine)
    engine.dispose()
    assert refused.status == "refused"
    assert refused.version == version_of(models / "bad.safetensors")


def test_a_margin_above_the_gain_refuses(tmp_path: Path, days: Path, models: Path) -> None:
    first = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
    )
    gain = json.loads((tmp_path / "decision.json").read_text())["ci95"][1]
    assert first == 0
    code = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
        "--margin",
        str(gain + 1.0),
    )
    assert code == 1


def test_fewer_than_five_days_are_refused_for_want_of_an_interval(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
        "--holdout",
        "2",
    )
    assert code == 1
    assert "no confidence interval: only 2 distinct days" in capsys.readouterr().out


def test_the_registry_champion_is_the_default_champion(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote(tmp_path, days, "--challenger", str(models / "good.safetensors")) == 2
    assert "the registry holds no champion yet" in capsys.readouterr().err
    promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
    )
    code = promote(tmp_path, days, "--challenger", str(models / "bad.safetensors"))
    assert code == 1
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["champion"]["version"] == version_of(models / "good.safetensors")


def test_bad_input_names_the_option(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = str(models / "good.safetensors")
    assert promote(tmp_path, days, "--challenger", good, "--champion", good) == 2
    assert "it is the champion already" in capsys.readouterr().err
    assert promote(tmp_path, days, "--challenger", good, "--holdout", "30") == 2
    assert "--holdout 30" in capsys.readouterr().err
    assert promote(tmp_path, days, "--challenger", str(days / "2025-10-01.json")) == 2
    assert "challenger:" in capsys.readouterr().err
    code = promote(tmp_path, days, "--challenger", good, "--champion-version", "pairwise-0")
    assert code == 2
    assert "--champion-version: pairwise-0 was never promoted" in capsys.readouterr().err


def test_write_switch_row_names_the_new_champion(tmp_path: Path, days: Path, models: Path) -> None:
    code = promote(
        tmp_path,
        days,
        "--challenger",
        str(models / "good.safetensors"),
        "--champion",
        str(models / "bad.safetensors"),
        "--write-switch-row",
    )
    assert code == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    with engine.connect() as connection:
        row = connection.execute(select(service_state)).one()
    engine.dispose()
    assert row.champion_path == str((models / "good.safetensors").resolve())
    assert row.champion_version == version_of(models / "good.safetensors")
    assert row.updated_by == "tester"


@pytest.mark.slow
def test_a_running_service_refuses_an_outside_model_serves_a_challenger_and_swaps(
    tmp_path: Path,
    days: Path,
    models: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One running service serving the bad model: a model outside its models folder is
    refused; ``--as-challenger`` serves the good one beside the champion; a plain promote
    measures the good one against the champion, hands it over, and /rl/status shows the new
    version from then on, the process never restarted."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = elsewhere / "good.safetensors"
    outside.write_bytes((models / "good.safetensors").read_bytes())
    database_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with ServerProcess(
        tmp_path / "data", model=models / "bad.safetensors", database_url=database_url
    ) as server:
        # A model outside the models folder: refused, nothing recorded, nothing served.
        code = main(
            ["promote", "--challenger", str(outside), "--days", str(days)]
            + ["--service", server.url, "--token", ADMIN_TOKEN, "--database-url", database_url]
        )
        status = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
        assert code == 2
        err = capsys.readouterr().err
        assert "outside the models folder" in err and "--models-dir" in err
        assert "nothing recorded" in err
        assert status["model"]["version"] == version_of(models / "bad.safetensors")

        # As challenger, the admin token from the environment, as serve's is.
        with monkeypatch.context() as environment:
            environment.setenv("RLDISPATCH_ADMIN_TOKENS", ADMIN_TOKEN)
            code = main(
                ["promote", "--challenger", str(models / "good.safetensors"), "--days", str(days)]
                + ["--service", server.url, "--as-challenger", "0.3"]
                + ["--database-url", database_url, "--json", str(tmp_path / "decision.json")],
            )
        served = httpx.get(f"{server.url}/rl/models", headers=auth(), timeout=30).json()
        assert code == 0
        assert served["champion"]["version"] == version_of(models / "bad.safetensors")
        assert served["challenger"]["version"] == version_of(models / "good.safetensors")
        assert served["challenger_ratio"] == 0.3
        decision = json.loads((tmp_path / "decision.json").read_text())
        assert decision["role"] == "challenger" and decision["registry"]["status"] == "challenger"

        # Promoted: the running service swaps its champion without a restart.
        before = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
        assert before["model"]["version"] == version_of(models / "bad.safetensors")
        code = main(
            [
                "promote",
                "--challenger",
                str(models / "good.safetensors"),
                "--days",
                str(days),
                "--service",
                server.url,
                "--token",
                ADMIN_TOKEN,
                "--database-url",
                database_url,
                "--by",
                "tester",
            ]
        )
        assert code == 0
        after = httpx.get(f"{server.url}/rl/status", headers=auth(), timeout=30).json()
        assert server.process.poll() is None
    assert after["model"]["version"] == version_of(models / "good.safetensors")
    assert after["worker_pid"] == before["worker_pid"]
    assert after["state_version"] > before["state_version"]
    engine = create_store_engine(database_url)
    champion = registry.current_champion(engine)
    engine.dispose()
    assert champion is not None and champion.report["handed_to"]["service"] == server.url


@pytest.mark.parametrize("seen_as", ["selection_days", "training_days"])
def test_a_challenger_trained_or_selected_on_a_held_out_day_is_refused(
    seen_as: str, tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rldispatch.agents.pairwise.model_file import load_pairwise_model, save_pairwise_model

    loaded = load_pairwise_model(models / "good.safetensors")
    metadata = replace(loaded.metadata, training_summary={seen_as: ["2025-10-06"]}, version="")
    seen = save_pairwise_model(tmp_path / "seen.safetensors", loaded.network, metadata)
    code = promote(
        tmp_path, days, "--challenger", str(seen), "--champion", str(models / "bad.safetensors")
    )
    assert code == 2
    assert "trained or selected on held-out days (2025-10-06)" in capsys.readouterr().err


@pytest.mark.parametrize("margin", ["nan", "inf", "-inf"])
def test_a_margin_that_is_not_finite_is_refused(
    margin: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rldispatch.cli import main

    with pytest.raises(SystemExit) as exit_code:
        main(
            [
                "promote",
                "--challenger",
                "c.safetensors",
                "--days",
                str(tmp_path),
                f"--margin={margin}",
            ]
        )
    assert exit_code.value.code == 2
    assert f"--margin: must be a finite number, got {margin}" in capsys.readouterr().err


def test_an_uncertain_day_on_a_road_network_is_stated_in_the_decision(
    tmp_path: Path, days: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rldispatch.scenarios.presets import GENEVA_CENTRE
    from rldispatch.scenarios.street_grid import write_street_grid

    grid = write_street_grid(tmp_path / "grid.osm.pbf", GENEVA_CENTRE, 12, 12, spacing_km=1.0)
    noise = ("--travel-noise", "0.2", "--no-show-rate", "0.05")
    options = ("--challenger", str(models / "good.safetensors"), "--champion", "insertion")
    assert promote(tmp_path, days, *options, *noise, "--road-network", str(grid)) in (0, 1)
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["uncertainty"]["travel_cv"] == 0.2
    assert decision["uncertainty"]["no_show_rate"] == 0.05
    assert decision["road_network"] == str(grid)
    line = "trained on the travel formula, played on the road network grid.osm.pbf"
    assert f"challenger: {line}\n" in capsys.readouterr().out
    assert decision["road_network_override"] == {"challenger": line}


def documented_commands(page: Path, verb: str) -> list[list[str]]:
    """The ``rldispatch VERB ...`` command lines of ``page``'s console blocks, as arguments
    (continuation lines joined; the ``$`` prompt and the verb's name left out)."""
    import shlex

    lines = page.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    prefix = f"$ rldispatch {verb} "
    return [shlex.split(line[len(prefix) :]) for line in lines if line.startswith(prefix)]


def test_the_feedback_loop_page_records_in_the_database_it_serves_from() -> None:
    """docs/feedback_loop.md: the promoted model "is recorded in the model registry
    (rl_model_registry in the service's database)": its promote command must name the
    database its serve command logs to, or the registry lands in a local SQLite file."""
    from rldispatch.cli import build_parser
    from rldispatch.service.config import ServiceConfig

    page = Path(__file__).resolve().parents[2] / "docs" / "feedback_loop.md"

    def databases(verb: str) -> set[str]:
        urls = set()
        for arguments in documented_commands(page, verb):
            args = build_parser(verb).parse_args([verb, *arguments])
            config = ServiceConfig.from_env(
                {}, database_url=args.database_url, data_dir=args.data_dir
            )
            urls.add(config.resolved_database_url)
        return urls

    served = databases("serve")
    assert len(served) == 1 and databases("promote") == served
