"""Solve the Cordeau dial-a-ride instances with the hindsight solver and compare to the optimum.

Usage (from the repository root)::

    .venv/bin/python bench/cordeau.py --time-limit 60 --jobs 1 --json cordeau.json
    .venv/bin/python bench/cordeau.py --time-limit 60 --generate 96:8:1 144:12:3

``--generate N:M:SEED`` solves instances of the published shape with N requests and M
vehicles drawn from SEED (``generate_cordeau``) instead of the files (no best-known cost).

Each instance is solved on one core; ``--jobs`` runs that many instances side by side (keep it
at or below the number of cores so each solve keeps its core). Feasibility is judged by the
independent checker, not by the solver.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rldispatch.files import atomic_write_json
from rldispatch.policies.hindsight import CORDEAU_FIRST_SOLUTIONS, solve_cordeau
from rldispatch.policies.hindsight_check import check_cordeau_solution
from rldispatch.policies.hindsight_cordeau import CORDEAU_METHODS
from rldispatch.scenarios.cordeau import BEST_KNOWN_COSTS, generate_cordeau, read_cordeau

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT / ".." / "shared" / "benchmarks" / "cordeau"


def solve_one(
    source: Path | tuple[int, int, int],
    time_limit_s: float,
    seed: int,
    first_solutions: list[str],
    method: str = "ruin_recreate",
) -> dict:
    """Solve a file, or a generated instance given as (requests, vehicles, seed)."""
    instance = read_cordeau(source) if isinstance(source, Path) else generate_cordeau(*source)
    cpu_started_s = time.process_time()
    result = solve_cordeau(
        instance,
        time_limit_s=time_limit_s,
        seed=seed,
        first_solutions=first_solutions,
        method=method,
    )
    cpu_s = time.process_time() - cpu_started_s
    problems = check_cordeau_solution(instance, result.routes, claimed_cost=result.cost)
    best_known = BEST_KNOWN_COSTS.get(instance.name)
    gap_pct = None
    if best_known is not None and not problems:
        gap_pct = 100.0 * (result.cost - best_known) / best_known
    return {
        "instance": instance.name,
        "requests": instance.n_requests,
        "vehicles": instance.n_vehicles,
        "feasible": not problems,
        "problems": problems[:5],
        "cost": result.cost if math.isfinite(result.cost) else None,
        "best_known": best_known,
        "gap_pct": gap_pct,
        "vehicles_used": result.vehicles_used,
        "solve_time_s": result.solve_time_s,
        "cpu_s": cpu_s,
        "status": result.status,
    }


def _format_row(row: dict[str, Any]) -> str:
    gap = "-" if row["gap_pct"] is None else f"{row['gap_pct']:6.2f}"
    cost = "-" if row["cost"] is None else f"{row['cost']:9.2f}"
    best = "-" if row["best_known"] is None else f"{row['best_known']:8.2f}"
    return (
        f"{row['instance']:<8} {'yes' if row['feasible'] else 'NO':>8} {cost:>9} "
        f"{best:>9} {gap:>7} {row['solve_time_s']:7.1f} {row['cpu_s']:6.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of aK-N.txt files")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    parser.add_argument("--instances", nargs="+", help="names such as a2-16 (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="request order (0 = file order)")
    parser.add_argument(
        "--first-solutions",
        nargs="+",
        default=list(CORDEAU_FIRST_SOLUTIONS),
        help="OR-Tools first-solution strategies to compare before guided local search",
    )
    parser.add_argument(
        "--method", choices=CORDEAU_METHODS, default=CORDEAU_METHODS[0], help="the search"
    )
    parser.add_argument(
        "--generate", nargs="+", metavar="N:M:SEED", help="generated instances instead of files"
    )
    parser.add_argument("--jobs", type=int, default=1, help="instances solved side by side")
    parser.add_argument("--json", type=Path, help="write the table as JSON here")
    args = parser.parse_args(argv)

    folder = args.dir.resolve()
    if not folder.is_dir():
        print(f"no such folder: {folder}", file=sys.stderr)
        return 2
    paths: list = sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem))
    if args.generate:
        try:
            paths = [tuple(int(v) for v in spec.split(":")) for spec in args.generate]
        except ValueError:
            paths = []
        if not paths or any(len(spec) != 3 for spec in paths):
            print("--generate: each instance is N:M:SEED (three integers)", file=sys.stderr)
            return 2
    elif args.instances:
        wanted = set(args.instances)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            print(f"not found in {folder}: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2

    columns = ("feasible", "cost", "best", "gap %", "time s", "cpu s")
    widths = (8, 9, 9, 7, 7, 6)
    print("instance " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(
                solve_one, path, args.time_limit, args.seed, args.first_solutions, args.method
            )
            for path in paths
        ]
        rows = []
        for future in futures:
            row = future.result()
            rows.append(row)
            print(_format_row(row), flush=True)
    gaps = [row["gap_pct"] for row in rows if row["gap_pct"] is not None]
    mean_gap = sum(gaps) / len(gaps) if gaps else None
    feasible = sum(row["feasible"] for row in rows)
    print(f"feasible {feasible}/{len(rows)}", end="")
    print("" if mean_gap is None else f", mean gap {mean_gap:.2f} %")
    if args.json:
        atomic_write_json(
            args.json,
            {
                "time_limit_s": args.time_limit,
                "seed": args.seed,
                "method": args.method,
                "first_solutions": args.first_solutions,
                "instances": rows,
                "mean_gap_pct": mean_gap,
                "feasible": feasible,
            },
        )
    return 0 if feasible == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
