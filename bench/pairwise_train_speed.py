"""Training speed of the pairwise agent: this tree's code next to an earlier commit's, in one run.

    python bench/pairwise_train_speed.py [--baseline-ref deaf69c] [--days 9] [--repeats 3]
        [--setting defaults] [--setting tf8-b256=train_frequency=8,batch_size=256] [--json OUT]

The earlier commit's ``src/`` is exported with ``git archive`` into a temporary folder; each
measurement is a fresh Python process that imports ``rldispatch`` from either tree and trains
the pairwise agent (``rldispatch.training.train.train``, fleet days, seed 0, no evaluation,
checkpoints or TensorBoard, one PyTorch and one BLAS thread) for ``--days`` days. The figures
are the decisions per second (of wall time, and of CPU time: less sensitive to a busy
machine) of the days on which gradient steps run all day long (the buffer already holds
``learning_starts`` decisions when the day starts): the steady state of a long run. Both
trees train the same days in the same order. The two alternate (baseline, current,
baseline, ...) so a busy machine slows both alike; each figure is the median over
``--repeats``; one short warm-up run of each compiles its bytecode and kernels first.
Pin it to one core: ``taskset -c 0 nice -n 10 python bench/pairwise_train_speed.py``.

A ``--setting NAME=key=value,key=value`` trains with those config fields changed (the same
fields in both trees); ``defaults`` is the config's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
CURRENT_SRC = REPOSITORY / "src"
DEFAULT_BASELINE = "deaf69c"
"""The last commit before the faster gradient step (packed first layer, cheap max backward)."""


FIGURES = ("learning_decisions_per_second", "learning_decisions_per_cpu_second")


def parse_setting(text: str) -> tuple[str, dict[str, str]]:
    """``NAME=key=value,key=value`` (or ``defaults``) -> ``(NAME, {key: value})``."""
    if text == "defaults":
        return text, {}
    name, _, fields = text.partition("=")
    if not name or not fields:
        raise SystemExit(f"--setting: expected NAME=key=value,..., got {text!r}")
    values = {}
    for item in fields.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--setting {name}: {item!r} is not key=value")
        values[key] = value
    return name, values


def export_src(ref: str, folder: Path) -> Path:
    """``ref``'s ``src/`` tree, written under ``folder``."""
    archive = folder / "src.tar"
    with archive.open("wb") as handle:
        subprocess.run(
            ["git", "-C", str(REPOSITORY), "archive", ref, "src"], stdout=handle, check=True
        )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def worker(days: int, fields: dict[str, str]) -> dict:
    """Train in this process (``rldispatch`` from ``sys.path``); the figures as a dict."""
    import rldispatch
    from rldispatch.agents.pairwise.config import PairwiseConfig
    from rldispatch.training.days import FleetDays
    from rldispatch.training.train import RunSettings, TrainingRun, train

    play_day = TrainingRun._play_day

    def timed_play_day(run: TrainingRun) -> dict:
        started = time.process_time()
        record = play_day(run)
        record["cpu_seconds"] = time.process_time() - started
        return record

    TrainingRun._play_day = timed_play_day
    defaults = PairwiseConfig()
    typed = {key: type(getattr(defaults, key))(value) for key, value in fields.items()}
    config = PairwiseConfig(**typed)
    settings = RunSettings(
        max_days=days, eval_every_days=0, checkpoint_every_days=0, save_replay_buffer=False
    )
    with tempfile.TemporaryDirectory() as out_dir:
        result = train(
            "pairwise",
            config,
            Path(out_dir) / "run",
            FleetDays(selection=1),
            settings,
            progress=False,
            tensorboard=False,
        )
        records = json.loads(result.metrics_path.read_text())["days"]
    learning = [r for r in records if r["decision"] - r["decisions"] >= config.learning_starts]
    if not learning:
        raise SystemExit(f"--days {days}: no day trained with gradient steps all day; add days")
    decisions = sum(r["decisions"] for r in learning)
    seconds = sum(r["seconds"] for r in learning)
    cpu_seconds = sum(r["cpu_seconds"] for r in learning)
    return {
        "rldispatch": str(Path(rldispatch.__file__).resolve().parent),
        "decisions": result.decisions,
        "learning_days": len(learning),
        "learning_decisions": decisions,
        "learning_decisions_per_second": decisions / seconds,
        "learning_decisions_per_cpu_second": decisions / cpu_seconds,
        "final_td_loss": records[-1].get("td_loss"),
    }


def measure(src: Path, days: int, fields: dict[str, str]) -> dict:
    """One fresh process importing ``rldispatch`` from ``src``."""
    command = [sys.executable, __file__, "--worker", "--days", str(days)]
    command += ["--fields", json.dumps(fields)]
    environment = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"worker on {src} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(figures["rldispatch"]) != src / "rldispatch":
        raise SystemExit(f"worker imported {figures['rldispatch']}, not {src / 'rldispatch'}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["process_cpu_s"] = (after.ru_utime + after.ru_stime) - (
        before.ru_utime + before.ru_stime
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE, help="git commit or branch")
    parser.add_argument("--days", type=int, default=9, help="training days per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each")
    parser.add_argument(
        "--setting", action="append", help="NAME=key=value,... or defaults (repeatable)"
    )
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fields", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.days, json.loads(args.fields))))
        return
    settings = [parse_setting(text) for text in args.setting or ["defaults"]]
    print(f"load average {os.getloadavg()}, baseline {args.baseline_ref}", flush=True)
    report: dict = {"baseline_ref": args.baseline_ref, "days": args.days, "settings": {}}
    with tempfile.TemporaryDirectory() as folder:
        trees = {"baseline": export_src(args.baseline_ref, Path(folder)), "current": CURRENT_SRC}
        for src in trees.values():  # compiled bytecode and the simulator's cached kernels
            measure(src, 1, {"learning_starts": "0", "batch_size": "8"})
        for name, fields in settings:
            runs: dict[str, list[dict]] = {"baseline": [], "current": []}
            for repeat in range(args.repeats):
                for tree, src in trees.items():
                    figures = measure(src, args.days, fields)
                    runs[tree].append(figures)
                    print(
                        f"{name} run {repeat + 1} {tree:<8}: "
                        f"{figures['learning_decisions_per_second']:6.1f} decisions/s learning "
                        f"({figures['learning_decisions']} decisions), "
                        f"{figures['learning_decisions_per_cpu_second']:6.1f} per CPU second",
                        flush=True,
                    )
            medians = {
                tree: {key: statistics.median(r[key] for r in results) for key in FIGURES}
                for tree, results in runs.items()
            }
            ratio = (
                medians["current"]["learning_decisions_per_second"]
                / medians["baseline"]["learning_decisions_per_second"]
            )
            cpu_ratio = (
                medians["current"]["learning_decisions_per_cpu_second"]
                / medians["baseline"]["learning_decisions_per_cpu_second"]
            )
            print(
                f"{name}: baseline {medians['baseline']['learning_decisions_per_second']:.1f} | "
                f"current {medians['current']['learning_decisions_per_second']:.1f} decisions/s "
                f"| ratio {ratio:.2f}x (per CPU second: {cpu_ratio:.2f}x)",
                flush=True,
            )
            report["settings"][name] = {
                "fields": fields,
                "runs": runs,
                "medians": medians,
                "ratio": ratio,
                "cpu_ratio": cpu_ratio,
            }
    report["load_average_end"] = os.getloadavg()
    if args.json:
        sys.path.insert(0, str(CURRENT_SRC))
        from rldispatch.files import atomic_write_json

        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
