"""The daily load from the configured source: a drop folder of files, or Yahoo Finance.

``VOLFORECAST_INGEST__SOURCE`` chooses. The drop folder (``VOLFORECAST_INGEST__DROP_DIR``,
``home/incoming`` by default) takes CSV and Parquet files in the layout ``volforecast ingest
--file`` reads; each file is its own load through the quality gate, and then moves aside:
to ``loaded/`` when rows were stored (with its rejected rows beside it), to ``failed/`` with
the reason when it could not be read or nothing in it passed. So a rerun finds only the files
that arrived since, and one bad file costs only itself. A file is picked up by its suffix:
write it under another name (``prices.csv.part``) and rename it when complete. Yahoo Finance
re-reads the stored tickers from a week before their last close. Either way the report ends
with the freshness of the stored prices for the run's date.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from volforecast.data import sources
from volforecast.data.db import ensure_schema, reachable
from volforecast.data.repositories.prices import PriceRepository, UpsertCounts
from volforecast.errors import DataSourceError
from volforecast.jobs.freshness import Freshness, check_freshness, latest_closed_session
from volforecast.jobs.ingest import IngestReport, ingest
from volforecast.settings import Settings

log = logging.getLogger(__name__)

PRICE_SUFFIXES = (".csv", ".csv.gz", ".txt", ".parquet", ".pq")
LOADED, FAILED = "loaded", "failed"

FileStatus = Literal["loaded", "partial", "failed"]


@dataclass(frozen=True)
class FileOutcome:
    """One dropped file: what it gave, and where it went."""

    name: str
    status: FileStatus
    message: str
    moved_to: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ConfiguredIngestReport:
    """What :func:`ingest_configured` loaded, and how fresh the store is afterwards."""

    source: str
    freshness: Freshness
    files: list[FileOutcome] = field(default_factory=list)
    loads: list[IngestReport] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Sentences for what could not be loaded at all (a file, or the whole source)."""

    @property
    def status(self) -> Literal["complete", "partial", "failed"]:
        """``failed`` when something was offered and nothing loaded; ``partial`` when some did."""
        loaded = [r for r in self.loads if r.status != "failed"]
        if self.failures and not loaded:
            return "failed"
        if self.failures or any(r.status != "complete" for r in self.loads):
            return "partial"
        return "complete"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "source": self.source,
            "status": self.status,
            **asdict(sum((r.counts for r in self.loads), UpsertCounts())),
            "files": [vars(f) for f in self.files],
            "failures": self.failures,
            "freshness": {**self.freshness.to_dict(), "message": self.freshness.message},
        }


def waiting_files(folder: Path) -> list[Path]:
    """The price files waiting in ``folder``, oldest name first; others are left alone."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and any(p.name.lower().endswith(s) for s in PRICE_SUFFIXES)
    )


def _move(path: Path, folder: Path, stamp: str) -> Path:
    # The stamp keeps a file dropped under the same name every day from replacing yesterday's.
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stamp}-{path.name}"
    shutil.move(path, target)
    return target


def ingest_drop_folder(
    folder: Path, *, engine: Engine, settings: Settings, report: ConfiguredIngestReport
) -> None:
    """Load every file waiting in ``folder`` into ``report``, moving each aside when done.

    Raises
    ------
    DatabaseUnavailableError
        When the database goes away; the file being loaded stays where it was, so the next
        run loads it again (the upsert makes that safe).
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for path in waiting_files(folder):
        try:
            batch = sources.load_file(path)
            rejects = folder / LOADED / f"{stamp}-{path.name}.rejects.csv"
            loaded = ingest(batch, engine=engine, settings=settings, rejects_path=rejects)
        except DataSourceError as exc:
            moved = _move(path, folder / FAILED, stamp)
            moved.with_name(moved.name + ".error.txt").write_text(f"{exc}\n")
            report.failures.append(f"{path.name}: {exc}")
            report.files.append(FileOutcome(path.name, "failed", str(exc), str(moved)))
            log.error("%s not loaded, moved to %s: %s", path.name, moved, exc)
            continue
        report.loads.append(loaded)
        if loaded.status == "failed":
            message = f"no row passed the quality gate ({loaded.quality.rows_received} read)"
            moved = _move(path, folder / FAILED, stamp)
            moved.with_name(moved.name + ".error.txt").write_text(f"{message}\n")
            report.failures.append(f"{path.name}: {message}")
            status: FileStatus = "failed"
        else:
            moved = _move(path, folder / LOADED, stamp)
            status = "loaded" if loaded.status == "complete" else "partial"
            message = (f"{loaded.quality.rows_accepted} rows accepted of "
                       f"{loaded.quality.rows_received}")  # fmt: skip
        report.files.append(FileOutcome(path.name, status, message, str(moved),
                                        **asdict(loaded.counts)))  # fmt: skip
        log.info("%s: %s; moved to %s", path.name, message, moved)


def _yfinance_batch(engine: Engine, settings: Settings, as_of: dt.date) -> sources.PriceBatch:
    with reachable(engine):
        latest = PriceRepository(engine).latest_dates()
    tickers = list(settings.ingest.yfinance_tickers) or sorted(latest)
    if not tickers:
        msg = ("no ticker to download: set VOLFORECAST_INGEST__YFINANCE_TICKERS or load some "
               "prices first")  # fmt: skip
        raise DataSourceError(msg)
    known = [latest[t] for t in tickers if t in latest]
    # A ticker never loaded starts a year back; the others a week before their last close.
    start = min(known) if len(known) == len(tickers) else as_of - dt.timedelta(days=365)
    start -= dt.timedelta(days=settings.ingest.yfinance_overlap_days)
    # Yahoo's end is exclusive: the day after the run's date includes its close.
    return sources.load_yfinance(tickers, start, as_of + dt.timedelta(days=1))


def ingest_configured(
    engine: Engine, settings: Settings, as_of: dt.date | None = None
) -> ConfiguredIngestReport:
    """Load from ``settings.ingest.source``, then judge freshness for ``as_of``.

    ``as_of`` is the run's date (the DAG's logical date); the latest closed NYSE session by
    default.

    Raises
    ------
    DatabaseUnavailableError
        When the database cannot be reached.
    """
    day = latest_closed_session() if as_of is None else as_of
    config = settings.ingest
    source = f"drop:{config.drop_dir}" if config.source == "drop" else "yfinance"
    with reachable(engine):
        ensure_schema(engine)  # a first run on a fresh machine has no tables yet
    report = ConfiguredIngestReport(source=source, freshness=_freshness(engine, day))
    if config.source == "drop":
        assert config.drop_dir is not None  # noqa: S101  (filled in by Settings)
        config.drop_dir.mkdir(parents=True, exist_ok=True)
        ingest_drop_folder(config.drop_dir, engine=engine, settings=settings, report=report)
    else:
        try:
            report.loads.append(ingest(_yfinance_batch(engine, settings, day), engine=engine,
                                       settings=settings))  # fmt: skip
        except DataSourceError as exc:
            report.failures.append(str(exc))
            log.error("yfinance: %s", exc)
    report.freshness = _freshness(engine, day)
    return report


def _freshness(engine: Engine, day: dt.date) -> Freshness:
    with reachable(engine):
        return check_freshness(engine, day)
