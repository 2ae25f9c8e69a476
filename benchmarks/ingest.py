"""Ingest throughput: the whole shared S&P 500 file into SQLite and into PostgreSQL.

Each database is fresh. The first load inserts every accepted row; the second load of the
same file must change nothing. Times cover the whole job (quality gate and upserts), not the
file read, which is shown apart.

    python benchmarks/ingest.py                      # throwaway PostgreSQL, durable settings
    python benchmarks/ingest.py --postgres-url URL   # a server of your own (database is reused)
    python benchmarks/ingest.py --file other.parquet

Target (issue 2): the 1.7 M rows in under 60 s into PostgreSQL on a 2-core machine.
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
    print(
        f"{name:<11} {rows:>10,} {read_s:>7.1f} "
        f"{first.seconds:>8.1f} {rows / first.seconds:>10,.0f} "
        f"{second.seconds:>8.1f} {rows / second.seconds:>10,.0f} "
        f"{first.counts.inserted:>10,} {second.counts.inserted + second.counts.updated:>8,} "
        f"{stored:>10,}"
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
        f"{'database':<11} {'rows':>10} {'read s':>7} {'load 1 s':>8} {'rows/s':>10} "
        f"{'load 2 s':>8} {'rows/s':>10} {'inserted':>10} {'written 2':>8} {'stored':>10}"
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
