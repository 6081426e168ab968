"""The production feedback loop on full geneva days, through a real server (docs/feedback_loop.md).

    nice -n 10 .venv/bin/python bench/feedback_loop.py [--database-url URL] \
        [--training-days 7] [--gate-days 5] [--train-minutes 5] [--json runs/feedback_loop.json]

``rldispatch serve`` runs in its own process with a weak champion (the known-reward start
with its pair scores drowned in random weights, as an old model that dispatches badly) and
RL switched on. Days of operation are replayed through its HTTP API as docs/service.md tells
an integrator (a ``/rl/round`` at each decision, naming the day's ``service_date``; each
served ride's ``/rl/outcome`` after the day). Then, as an operator would:

1. ``collect --service-db`` of all the days (twice: the files must be identical), and of the
   first ``--training-days`` alone; the rows are counted against the collected provenance;
2. ``train --agent pairwise --scenarios`` on the first days, ``--train-minutes`` of wall time;
3. ``promote`` the retrained model against the served champion on the last ``--gate-days``
   (promoted when the paired CI lies above 0), which hands it to the service;
4. ``promote`` the network's untrained start against the new champion (the learning's own
   gate: refused unless the start beats it);
5. one more day operated, and ``/rl/metrics`` split by model version.

Bookings are unique per date; the days are geneva preset days of ``--seed`` onwards (seeds
apart from the tuning, validation and held-out ones).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from report_file import write_report
from serve_process import ADMIN_TOKEN, READ_TOKEN, ServeProcess
from sqlalchemy import create_engine, func, select
from variants import ci_text

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.cli import main as cli
from rldispatch.scenarios.files import load_scenario, load_scenario_source
from rldispatch.scenarios.presets import make_preset
from rldispatch.service.decisions.replay import dated, replay_days_through
from rldispatch.service.decisions.snapshot import LiveDay
from rldispatch.service.log.tables import NOTHING_ASSIGNED, outcomes, suggestions


def pairwise_model(path: Path, noise_std: float) -> Path:
    """The known-reward start (``noise_std`` 0), or with its pair scores drowned in noise."""
    if not noise_std:
        return save_untrained_model(path, seed=1)
    return save_untrained_model(
        path, 1, lambda network: network.pair_out.weight.normal_(std=noise_std)
    )


class Server(ServeProcess):
    """``rldispatch serve`` of the champion on the shared database, in a process of its own."""

    def __init__(self, data_dir: Path, model: Path, database_url: str, models: Path) -> None:
        options = ("--database-url", database_url, "--model", str(model), "--models-dir")
        super().__init__(data_dir, *options, str(models))


def count_rows(url: str, table: Any, *where: Any) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(table).where(*where)
        ).scalar_one()
    engine.dispose()
    return int(count)


def collect(url: str, since: Any, until: Any, out: Path) -> int:
    return cli(
        ["collect", "--service-db", url, "--since", str(since), "--until", str(until)]
        + ["--out", str(out)]
    )


def promote(url: str, server_url: str, days: Path, challenger: Path, gate: int, out: Path) -> dict:
    code = cli(
        [
            "promote",
            "--challenger",
            str(challenger),
            "--days",
            str(days),
            "--holdout",
            str(gate),
            "--service",
            server_url,
            "--token",
            ADMIN_TOKEN,
            "--database-url",
            url,
            "--by",
            "bench",
            "--json",
            str(out),
        ]
    )
    decision = json.loads(out.read_text())
    decision["exit_code"] = code
    return decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--database-url", help="the service's database (default: SQLite)")
    parser.add_argument("--training-days", type=int, default=7)
    parser.add_argument("--gate-days", type=int, default=5)
    parser.add_argument("--train-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7000)
    parser.add_argument("--json", default="runs/feedback_loop.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feedback_loop_"))
    url = args.database_url or f"sqlite:///{work / 'service.sqlite3'}"
    models = work / "models"
    models.mkdir()
    champion = pairwise_model(models / "champion.safetensors", noise_std=0.5)
    start = pairwise_model(models / "start.safetensors", noise_std=0.0)
    n_days = args.training_days + args.gate_days
    first = datetime.now(UTC).date() - timedelta(days=n_days + 1)
    dates = [first + timedelta(days=k) for k in range(n_days)]
    week = {day: dated(make_preset("geneva", args.seed + k), day) for k, day in enumerate(dates)}
    champion_model = load_learned_model(champion)
    config = champion_model.env_config_for(list(week.values()))
    day_start = LiveDay.from_preset("geneva").start_min
    report: dict[str, Any] = {"database": url.split("@")[-1], "days": [str(d) for d in dates]}
    clock = time.perf_counter()
    server = Server(work / "data", champion, url, models)
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        httpx.post(
            f"{server.url}/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=headers
        ).raise_for_status()
        replayed = replay_days_through(
            server.url, READ_TOKEN, week, champion_model.policy, config, day_start
        )
        report["replay"] = {
            "seconds": time.perf_counter() - clock,
            "rounds": sum(d.rounds for d in replayed.values()),
            "decisions": sum(d.decisions for d in replayed.values()),
            "differing": sum(d.differing for d in replayed.values()),
            "rides": sum(
                round(d.metrics.completion_rate * len(week[k].bookings))
                for k, d in replayed.items()
            ),
        }
        print(f"replayed {n_days} days: {report['replay']}", flush=True)

        collected = {}
        for name in ("days", "again"):
            collect(url, dates[0], dates[-1], work / name)
            collected[name] = {p.name: p.read_bytes() for p in (work / name).glob("*.json")}
        suggestion_ids, outcome_ids, bookings = [], [], []
        for path in sorted((work / "days").glob("*.json")):
            provenance = load_scenario_source(path)["provenance"]
            suggestion_ids += provenance["suggestion_ids"]
            outcome_ids += provenance["outcome_ids"]
            bookings += [b.id for b in load_scenario(path).bookings]
        report["collect"] = {
            "files": len(collected["days"]),
            "identical_twice": collected["days"] == collected["again"],
            "suggestion_rows": count_rows(url, suggestions),
            "rows_of_rounds_without_assignment": count_rows(
                url, suggestions, suggestions.c.booking_id == NOTHING_ASSIGNED
            ),
            "suggestions_in_days": len(suggestion_ids),
            "suggestions_once": len(set(suggestion_ids)) == len(suggestion_ids),
            "outcome_rows": count_rows(url, outcomes),
            "outcomes_in_days": len(outcome_ids),
            "bookings_in_days": len(bookings),
            "bookings_once": len(set(bookings)) == len(bookings),
            "bookings_operated": sum(len(day.bookings) for day in week.values()),
            "bookings_shown": sum(len(day.shown) for day in replayed.values()),
            "bookings_shown_collected": len(
                set().union(*(day.shown for day in replayed.values())) & set(bookings)
            ),
        }
        print(f"collect: {report['collect']}", flush=True)

        collect(url, dates[0], dates[args.training_days - 1], work / "first")
        started = time.perf_counter()
        cli(
            [
                "train",
                "--agent",
                "pairwise",
                "--scenarios",
                str(work / "first"),
                "--max-minutes",
                str(args.train_minutes),
                "--no-progress",
                "--out",
                str(work / "run"),
            ]
        )
        retrained = models / "retrained.safetensors"
        retrained.write_bytes((work / "run" / "best_model.safetensors").read_bytes())
        report["train_seconds"] = time.perf_counter() - started

        before = httpx.get(f"{server.url}/rl/status", headers=headers).json()
        report["promote_retrained"] = promote(
            url, server.url, work / "days", retrained, args.gate_days, work / "a.json"
        )
        after = httpx.get(f"{server.url}/rl/status", headers=headers).json()
        report["status"] = {
            "before": before["model"]["version"],
            "after": after["model"]["version"],
            "same_process": before["worker_pid"] == after["worker_pid"],
        }
        report["promote_start"] = promote(
            url, server.url, work / "days", start, args.gate_days, work / "b.json"
        )
        later_date = dates[-1] + timedelta(days=1)
        served_now = load_learned_model(retrained)
        replay_days_through(
            server.url,
            READ_TOKEN,
            {later_date: dated(make_preset("geneva", args.seed + n_days), later_date)},
            served_now.policy,
            served_now.env_config_for([week[dates[0]]]),
            day_start,
        )
        metrics = httpx.get(f"{server.url}/rl/metrics", headers=headers).json()
        report["metrics_by_version"] = {
            item.pop("model_version"): item for item in metrics["ab"]["rl_by_model_version"]
        }
    finally:
        server.stop()
    report["seconds"] = time.perf_counter() - clock
    for key in ("promote_retrained", "promote_start"):
        item = report[key]
        item.pop("evaluation", None)
        print(
            f"{key}: {item['decision']} (exit {item['exit_code']}): challenger - champion per "
            f"day {ci_text(item)} on {item['days']} days; challenger "
            f"{item['challenger']['mean_reward']:.1f}, champion "
            f"{item['champion']['mean_reward']:.1f}"
        )
    print(f"status: {report['status']}")
    for version, figures in report["metrics_by_version"].items():
        print(f"version {version}: {figures}")
    write_report(args.json, report)


if __name__ == "__main__":
    main()
