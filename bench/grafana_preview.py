"""A preview of the Grafana dashboard without Grafana: real Prometheus scraping a real
``rldispatch serve`` while held-out days are played through it, every panel's PromQL asked
of Prometheus, and the answers drawn where the dashboard's grid puts the panels.

It shows that each query runs in Prometheus and returns the series the panel expects; the
look is matplotlib's, not Grafana's. Needs a ``prometheus`` binary (Debian: ``apt-get install
prometheus``); it is not a dependency of the project. Usage::

    .venv/bin/python bench/grafana_preview.py --out runs/grafana-preview.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from serve_process import ADMIN_TOKEN, READ_TOKEN, ServeProcess, free_port, wait_for

from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import dated, replay_days_through
from rldispatch.service.decisions.snapshot import LiveDay

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rldispatch.json"
RATE_INTERVAL = "20s"
STEP_S = 2


def play(url: str, days: int) -> None:
    """Traffic with a shape: rounds with RL off, then suggestions of both A/B arms and rounds
    with RL on, outcomes reported all along."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    start = LiveDay.from_preset("geneva").start_min
    fallback = make_baseline("insertion")
    today = date.today()

    def days_from(first: int, count: int) -> dict:
        return {
            today - timedelta(days=first + k): dated(
                make_preset("geneva", HELD_OUT_SEEDS.start + first + k),
                today - timedelta(first + k),
            )
            for k in range(count)
        }

    config = EnvConfig(max_drivers=len(make_preset("geneva", HELD_OUT_SEEDS.start).drivers))
    replay_days_through(url, READ_TOKEN, days_from(0, days), fallback, config, start)
    time.sleep(20)
    toggled = httpx.post(f"{url}/rl/toggle", json={"enabled": True, "ab_ratio": 0.5}, headers=admin)
    toggled.raise_for_status()
    suggest_both_arms(url, 80)
    replay_days_through(url, READ_TOKEN, days_from(days, days), fallback, config, start)
    time.sleep(20)
    httpx.post(f"{url}/rl/toggle", json={"shadow": True}, headers=admin).raise_for_status()
    replay_days_through(url, READ_TOKEN, days_from(2 * days, 1), fallback, config, start)
    time.sleep(10)


def suggest_both_arms(url: str, count: int) -> None:
    """``count`` suggestions (A/B arms by booking id), each booking's outcome reported."""
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    day = make_preset("geneva", HELD_OUT_SEEDS.start + 99)
    now = datetime.now(UTC)

    def where(point: tuple[float, float]) -> dict[str, float]:
        return {"lat": point[0], "lon": point[1]}

    drivers = [
        {"id": d.id, "position": where(d.start), "shift_ends_in_min": 300.0} for d in day.drivers
    ]
    for index in range(count):
        booking = day.bookings[index % len(day.bookings)]
        body = {
            "booking": {
                "id": f"s{index}",
                "pickup": where(booking.pickup),
                "dropoff": where(booking.dropoff),
                "requested_in_min": 20.0,
                "window_opens_in_min": 10.0,
                "window_closes_in_min": 50.0,
            },
            "drivers": drivers,
        }
        answer = httpx.post(f"{url}/rl/suggest", json=body, headers=headers, timeout=60).json()
        outcome = {
            "booking_id": f"s{index}",
            "driver_id": answer["driver_id"] or drivers[0]["id"],
            "requested_pickup_at": (now - timedelta(minutes=40)).isoformat(),
            "picked_up_at": (now - timedelta(minutes=40 - (index % 9))).isoformat(),
            "distance_km": 3.0 + index % 7,
        }
        httpx.post(f"{url}/rl/outcome", json=outcome, headers=headers).raise_for_status()
        time.sleep(0.1)


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def query_panels(prometheus: str, begin: float, end: float) -> dict[int, list]:
    """Each panel's series: ``[(legend, times, values)]`` from a range query of each target."""
    answers: dict[int, list] = {}
    for panel in panels():
        series = []
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            reply = httpx.get(
                f"{prometheus}/api/v1/query_range",
                params={"query": expr, "start": begin, "end": end, "step": STEP_S},
                timeout=30,
            ).json()
            if reply["status"] != "success":
                raise RuntimeError(f"{panel['title']}: {expr}: {reply}")
            for result in reply["data"]["result"]:
                legend = target.get("legendFormat", "")
                for key, value in result["metric"].items():
                    legend = legend.replace("{{" + key + "}}", value)
                times = [float(t) - begin for t, _ in result["values"]]
                values = [float(v) for _, v in result["values"]]
                series.append((legend or expr, times, values))
        answers[panel["id"]] = series
    return answers


def draw(answers: dict[int, list], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels())
    figure = plt.figure(figsize=(20, rows * 0.42))
    figure.patch.set_facecolor("#f4f5f5")
    for panel in panels():
        grid = panel["gridPos"]
        left, width = grid["x"] / 24, grid["w"] / 24
        bottom, height = 1 - (grid["y"] + grid["h"]) / rows, grid["h"] / rows
        if panel["type"] == "row":
            figure.text(
                left + 0.005, bottom + height / 2, panel["title"], fontsize=13, weight="bold"
            )
            continue
        axes = figure.add_axes((left + 0.03, bottom + 0.015, width - 0.04, height - 0.035))
        axes.set_title(panel["title"], fontsize=10, loc="left")
        series = answers.get(panel["id"], [])
        if panel["type"] == "stat":
            axes.axis("off")
            value = series[0][2][-1] if series and series[0][2] else None
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            text = (
                "no data"
                if value is None
                else f"{value:.0%}"
                if unit == "percentunit"
                else f"{value:g}"
            )
            axes.text(0.5, 0.4, text, ha="center", va="center", fontsize=24, weight="bold")
        elif panel["type"] == "table":
            axes.axis("off")
            lines = [f"{legend}: {values[-1]:.3g}" for legend, _, values in series if values]
            axes.text(
                0, 1, "\n".join(lines[:12]) or "no data", va="top", fontsize=8, family="monospace"
            )
        else:
            for legend, times, values in series:
                axes.plot(times, values, label=legend, linewidth=1.5)
            if series:
                axes.legend(fontsize=7, loc="upper left")
            else:
                axes.text(0.5, 0.5, "no data", ha="center", transform=axes.transAxes)
            axes.tick_params(labelsize=7)
            axes.set_xlabel("seconds", fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/grafana-preview.png"))
    parser.add_argument("--days", type=int, default=1, help="days played per phase (1)")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    args = parser.parse_args()
    if not Path(args.prometheus).exists():
        print("prometheus: no binary found (Debian: apt-get install prometheus)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="grafana-preview-"))
    model = save_untrained_model(folder / "pairwise.safetensors", 0)
    serve = ServeProcess(folder / "data", "--model", str(model))
    port, prometheus_port = serve.port, free_port()
    (folder / "token").write_text(READ_TOKEN)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "rldispatch",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(folder / "token")},
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))
    prometheus = subprocess.Popen(
        [
            args.prometheus,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url, prometheus_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{prometheus_port}"
    try:
        wait_for(f"{prometheus_url}/-/ready", prometheus, "prometheus")
        begin = time.time()
        time.sleep(5)
        play(url, args.days)
        end = time.time()
        time.sleep(2)
        draw(query_panels(prometheus_url, begin, end), args.out)
    finally:
        prometheus.terminate()
        prometheus.wait(60)
        serve.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
