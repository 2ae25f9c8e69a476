"""Ingest job: a batch of prices through the quality gate into ``market.stock_prices``."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from volforecast.data.db import UNAVAILABLE_ERRORS, ensure_schema, unavailable
from volforecast.data.quality.gate import run_gate
from volforecast.data.quality.report import GateResult, QualityReport
from volforecast.data.repositories.prices import PriceRepository, UpsertCounts
from volforecast.data.sources import PriceBatch
from volforecast.faults import checkpoint
from volforecast.jobs.market import refresh_market
from volforecast.settings import Settings

log = logging.getLogger(__name__)

JobStatus = Literal["complete", "partial", "failed"]
Progress = Callable[[int, int], None]
"""Called with (rows done, rows in all) after each committed chunk."""


@dataclass(frozen=True)
class IngestReport:
    """What an ingest run did."""

    source: str
    quality: QualityReport
    counts: UpsertCounts
    seconds: float
    rejects_file: str | None = None
    market_days: int = 0
    """Days of the market series recomputed (:func:`~volforecast.jobs.market.refresh_market`)."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Where the time went: ``gate`` (the quality checks), ``prices`` (the upserts) and
    ``market`` (the market series)."""

    @property
    def status(self) -> JobStatus:
        """``complete`` when every row loaded, ``failed`` when none did, else ``partial``."""
        if self.quality.rows_accepted == 0:
            return "failed"
        return "complete" if self.quality.clean else "partial"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "source": self.source,
            "status": self.status,
            **asdict(self.counts),
            "seconds": round(self.seconds, 3),
            "rejects_file": self.rejects_file,
            "market_days": self.market_days,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "quality": self.quality.to_dict(),
        }


@contextlib.contextmanager
def _cut_short(engine: Engine, where: str) -> Iterator[None]:
    """The database went away mid-job: say how far the job got and how to finish it."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        error = unavailable(engine, exc)
        error.args = (f"{error.args[0]}; {where}",)
        raise error from exc


def ingest(
    batch: PriceBatch,
    *,
    engine: Engine,
    settings: Settings,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Judge a batch and upsert the rows that pass, chunk by chunk.

    Each chunk is its own transaction and merges idempotently, so a run cut short by a dead
    database keeps what it committed, and running it again finishes the job without
    duplicating or losing a row. A store with no tables yet is migrated on the spot;
    ``rejects_path`` receives the rejected rows as CSV, with a ``check`` column saying why.

    Raises
    ------
    DatabaseUnavailableError
        When the database cannot be reached, or goes away during the load.
    """
    started = time.perf_counter()
    ensure_schema(engine)
    lap = time.perf_counter()
    gate = run_gate(batch.frame, settings.quality, batch.unreadable)
    for ticker, reason in batch.unavailable.items():
        gate.report.add_unavailable(ticker, reason)
    rejects_file = None
    if rejects_path is not None and not gate.rejected.empty:
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        gate.rejected.to_csv(rejects_path, index=False)
        rejects_file = str(rejects_path)
    stages = {"gate": time.perf_counter() - lap}
    lap = time.perf_counter()
    counts = _upsert_in_chunks(engine, gate, settings.ingest_chunk_rows, progress)
    stages["prices"] = time.perf_counter() - lap
    # The market series is derived from every stored ticker: the days from the earliest one
    # this batch (or a load killed before it) changed are recomputed. A failure here loses no
    # price: the stale mark stays, and the next ingest of anything recomputes them.
    checkpoint("ingest.after_prices")
    stored = "every price was stored, the market series was not refreshed: run any ingest again"
    lap = time.perf_counter()
    with _cut_short(engine, stored):
        market_days = refresh_market(engine, settings.quality)
    stages["market"] = time.perf_counter() - lap

    checkpoint("ingest.after_market")
    seconds = time.perf_counter() - started
    report = IngestReport(
        batch.source, gate.report, counts, seconds, rejects_file, market_days, stages
    )
    log.info(
        "Ingested %s: %d rows received, %d accepted (%d new, %d changed, %d unchanged), "
        "%d rejected, in %.1f s: %s",
        batch.source,
        gate.report.rows_received,
        gate.report.rows_accepted,
        counts.inserted,
        counts.updated,
        counts.unchanged,
        len(gate.rejected),
        report.seconds,
        report.status,
    )
    return report


def _upsert_in_chunks(
    engine: Engine, gate: GateResult, chunk: int, progress: Progress | None
) -> UpsertCounts:
    """Upsert the accepted rows, each ``chunk`` of them in a transaction of its own."""
    accepted = gate.accepted
    total = len(accepted)
    repository = PriceRepository(engine)
    ingested_at = dt.datetime.now(dt.UTC)
    counts = UpsertCounts()
    for start in range(0, total, chunk):
        rows = accepted.iloc[start : start + chunk]
        where = (
            f"{start} of {total} rows were committed before it failed, and "
            "running the same ingest again finishes the load safely"
        )
        with _cut_short(engine, where):
            counts += repository.upsert(rows, ingested_at=ingested_at)
        checkpoint("ingest.after_chunk")
        if progress is not None:
            progress(min(start + chunk, total), total)
    return counts
