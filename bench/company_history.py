"""A synthetic company history in a database, for trying ``collect`` → ``train`` → ``evaluate``.

    .venv/bin/python bench/company_history.py --db sqlite:///runs/company/history.db \
        --first-day 2025-09-01 --days 70

fills the history tables (``rldispatch.scenarios.history``) with one geneva-style weekday per
date, as the company's booking system would hold it, then::

    rldispatch collect --db sqlite:///runs/company/history.db --since 2025-09-01 \
        --until 2025-11-09 --out runs/company/days
    rldispatch train --agent pairwise --scenarios runs/company/days --max-minutes 10 \
        --out runs/company/train
    rldispatch evaluate --model runs/company/train/best_model.safetensors \
        --scenarios runs/company/days --compare-baseline

The days' seeds start at ``--seed`` (default outside every preset seed range, so no company
day is a training, tuning or held-out preset day).
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from rldispatch.scenarios.history import write_synthetic_history

COMPANY_SEED = 5_000_000


def create_sqlite_folder(url: str) -> None:
    """Create the folder a SQLite URL's file lies in (nothing for other databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the history database")
    parser.add_argument("--first-day", type=date.fromisoformat, default=date(2025, 9, 1))
    parser.add_argument("--days", type=int, default=70, help="consecutive dates (70)")
    parser.add_argument("--seed", type=int, default=COMPANY_SEED)
    args = parser.parse_args()
    dates = [args.first_day + timedelta(days=offset) for offset in range(args.days)]
    create_sqlite_folder(args.db)
    engine = create_engine(args.db)
    try:
        write_synthetic_history(engine, dates, seed=args.seed)
    finally:
        engine.dispose()
    print(f"{len(dates)} days of history, {dates[0]} to {dates[-1]}, in {args.db}")


if __name__ == "__main__":
    main()
