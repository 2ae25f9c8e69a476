"""Ingest throughput: the whole shared S&P 500 file into SQLite and into PostgreSQL.

Each database is fresh. The first load inserts every accepted row; the second load of the
same file must change nothing. Each load's job is timed whole and by stage: the quality
gate, the price writes and the market series; the file read is shown apart.

    python benchmarks/ingest.py                      # throwaway PostgreSQL, durable settings
    python benchmarks/ingest.py --postgres-url URL   # a server of your own (database is reused)
    python benchmarks/ingest.py --file other.parquet

Targets. Issue 2: the 1.7 M rows in under 60 s into PostgreSQL on a 2-core machine. Issue
26: the price writes into PostgreSQL at least 150,000 rows/s, and the whole job into
PostgreSQL at least as fast as into SQLite.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import main_with_page
from volforecast.data import db
from volforecast.data.local_postgres import LocalPostgres
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_file
from volforecast.jobs.ingest import ingest
from volforecast.settings import Settings

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared/data/sp500_daily_1999_2018.parquet"


def run(name: str, settings: Settings, path: Path) -> None:
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    started = time.perf_counter()
    batch = load_file(path)
    read_s = time.perf_counter() - started
    rows = len(batch.frame)
    first = ingest(batch, engine=engine, settings=settings)
    second = ingest(batch, engine=engine, settings=settings)
    stored = PriceRepository(engine).count()
    engine.dispose()
    for number, load in enumerate((first, second), 1):
        stage = load.stage_seconds
        written = load.counts.inserted + load.counts.updated
        print(
            f"{name:<11} {number:>4} {rows:>10,} {read_s:>7.1f} {stage['gate']:>7.1f} "
            f"{stage['prices']:>8.1f} {rows / stage['prices']:>10,.0f} {stage['market']:>8.1f} "
            f"{load.seconds:>7.1f} {rows / load.seconds:>10,.0f} {written:>10,} {stored:>10,}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--postgres-url", help="use this server instead of a throwaway one")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    print(f"file: {args.file}")
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, "
        f"python {platform.python_version()}"
    )
    print(
        "each database is loaded twice; 'read' is the file read, apart from the job; the job is "
        "the gate,\nthe price writes ('prices', and their rows/s) and the market series\n"
    )
    print(
        f"{'database':<11} {'load':>4} {'rows':>10} {'read s':>7} {'gate s':>7} "
        f"{'prices s':>8} {'rows/s':>10} {'market s':>8} {'job s':>7} {'rows/s':>10} "
        f"{'written':>10} {'stored':>10}"
    )
    with ExitStack() as stack:
        if not args.skip_sqlite:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{home / 'bench.db'}"
            settings = Settings(_env_file=None, home=home, database_url=url)  # type: ignore[call-arg]
            run("sqlite", settings, args.file)
        url = args.postgres_url or stack.enter_context(LocalPostgres(durable=True)).url
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        run("postgresql", settings, args.file)


if __name__ == "__main__":
    main_with_page(main, "Ingest speed")
