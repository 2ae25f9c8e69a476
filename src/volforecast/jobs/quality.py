"""Quality job: run the data-quality gate over stored prices and report, deleting nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from volforecast.data.db import ensure_schema, reachable
from volforecast.data.quality.gate import run_gate, stored_unreadable
from volforecast.data.quality.report import QualityReport
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import UnknownTickerError
from volforecast.settings import QualitySettings

log = logging.getLogger(__name__)


def check_stored(
    engine: Engine, config: QualitySettings, tickers: Sequence[str] | None = None
) -> QualityReport:
    """Judge the stored prices of some tickers (all when None).

    Stored rows passed the gate when they were loaded; what this finds comes from loads
    that met across batches (a gap between two files, say) or from changed thresholds.

    Raises
    ------
    UnknownTickerError
        When none of the given tickers is stored.
    """
    ensure_schema(engine)
    wanted = None if tickers is None else sorted({t.strip().upper() for t in tickers})
    with reachable(engine):
        prices = PriceRepository(engine).load(wanted)
    stored = set(prices["ticker"].unique())
    missing = [] if wanted is None else [t for t in wanted if t not in stored]
    if wanted is not None and len(missing) == len(wanted):
        msg = f"no stored prices for {', '.join(missing)}: ingest them first"
        raise UnknownTickerError(msg)
    report = run_gate(prices, config, stored_unreadable(prices)).report
    for ticker in missing:
        report.add_unavailable(ticker, "no stored prices")
    log.info(
        "Checked %d stored rows of %d tickers: %d ok, %d with findings",
        report.rows_received,
        len(stored),
        len(report.with_status("ok")),
        len(report.tickers) - len(report.with_status("ok")),
    )
    return report
