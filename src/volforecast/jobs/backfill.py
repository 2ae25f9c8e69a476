"""The daily prediction job for one date or a range of NYSE sessions, fresh data first.

Each date is judged by :func:`volforecast.jobs.freshness.check_freshness` before it is
forecast: a date whose session's close is not stored is refused (``allow_stale`` forecasts
from the last close anyway, for a backfill over a known gap). A range reads the production
models and the prices once and forecasts each session from its own close; storing is the
upsert of :func:`~volforecast.jobs.predict_daily.predict_all`, so a rerun of any date adds no row.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from volforecast.data.db import reachable
from volforecast.errors import ConfigurationError
from volforecast.jobs.freshness import Freshness, check_freshness, judge, sessions_between
from volforecast.jobs.predict import Preloaded
from volforecast.jobs.predict_daily import PredictFailure, PredictReport, predict_all, summary
from volforecast.models.base import MAX_HORIZON
from volforecast.registry.serving import ProductionModels
from volforecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DateOutcome:
    """What one date of a run stored, or why it stored nothing."""

    as_of: dt.date
    freshness: Freshness
    paths: int = 0
    rows: int = 0
    risk_rows: int = 0
    failures: int = 0
    skipped: bool = False
    """Refused for stale prices (without ``allow_stale``)."""


@dataclass
class SessionsReport:
    """What :func:`predict_sessions` stored, date by date."""

    dates: list[DateOutcome] = field(default_factory=list)
    failures: list[PredictFailure] = field(default_factory=list)
    vol_pct_by_model: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def paths(self) -> int:
        """Forecast paths stored over every date."""
        return sum(d.paths for d in self.dates)

    @property
    def rows(self) -> int:
        """Rows stored (inserted or rewritten) over every date."""
        return sum(d.rows for d in self.dates)

    @property
    def risk_rows(self) -> int:
        """VaR, ES and term-structure rows stored over every date."""
        return sum(d.risk_rows for d in self.dates)

    @property
    def stale(self) -> list[DateOutcome]:
        """The dates refused for stale prices."""
        return [d for d in self.dates if d.skipped]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; ``stale`` holds the sentence of each refused date."""
        return {
            "paths": self.paths,
            "rows": self.rows,
            "risk_rows": self.risk_rows,
            "seconds": round(self.seconds, 3),
            "summary": summary(PredictReport(vol_pct_by_model=self.vol_pct_by_model)),
            "failures": [vars(f) for f in self.failures],
            "stale": [d.freshness.message for d in self.stale],
            "dates": [
                {**d.freshness.to_dict(), "skipped": d.skipped, "paths": d.paths, "rows": d.rows,
                 "risk_rows": d.risk_rows, "failures": d.failures}
                for d in self.dates
            ],
        }  # fmt: skip


def run_dates(start: dt.date, end: dt.date | None) -> list[dt.date]:
    """The dates of a run: ``start`` alone, or every NYSE session from ``start`` to ``end``.

    Raises
    ------
    ConfigurationError
        When ``end`` is before ``start``, or the range holds no session.
    """
    if end is None:
        return [start]
    if end < start:
        msg = f"--to {end} is before --from {start}"
        raise ConfigurationError(msg)
    days = sessions_between(start, end)
    if not days:
        msg = f"no NYSE session from {start} to {end}"
        raise ConfigurationError(msg)
    return days


def predict_sessions(  # noqa: PLR0913  (the job's options, each a CLI flag)
    engine: Engine,
    settings: Settings,
    models: ProductionModels,
    dates: Sequence[dt.date],
    *,
    allow_stale: bool = False,
    model_types: Sequence[str] | None = None,
    tickers: Sequence[str] | None = None,
    horizon: int = MAX_HORIZON,
    progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    challengers: ProductionModels | None = None,
) -> SessionsReport:
    """Forecast and store every production model's paths for each of ``dates``.

    ``challengers``: the challengers waiting for live evidence, forecasting beside production
    (see :func:`~volforecast.jobs.predict_daily.predict_all`).

    ``dates`` come in any order; each forecasts from its latest close on or before it.
    ``allow_stale`` forecasts a date whose session's close is missing from the last close
    before it, instead of refusing it.

    Raises
    ------
    DatabaseUnavailableError
        When the price or prediction store cannot be reached.
    """
    started = time.perf_counter()
    report = SessionsReport()
    loaded = models.served() + ([] if challengers is None else challengers.served())
    served = sorted({t for m in loaded for t in m.models})
    needed = served if tickers is None else sorted({t.strip().upper() for t in tickers})
    preloaded = Preloaded.read(engine, settings, needed, max(dates)) if len(dates) > 1 else None
    # Each date's work is the same; the bar's total is known when the first date starts.
    total = None if on_start is None else (lambda n: on_start(n * len(dates)))
    for day in sorted(dates):
        # Judged on the tickers that are served: one nobody serves is a failure of its own.
        freshness = _freshness(engine, day, [t for t in needed if t in served], preloaded)
        outcome = DateOutcome(as_of=day, freshness=freshness)
        report.dates.append(outcome)
        if not freshness.fresh and not allow_stale:
            outcome.skipped = True
            if len(dates) > 1:  # a single date's caller says it once, as its error
                log.warning("%s: %s", day, freshness.message)
            continue
        done = predict_all(engine, settings, models, model_types=model_types, tickers=tickers,
                           horizon=horizon, as_of=day, progress=progress,
                           on_start=total, preloaded=preloaded,
                           challengers=challengers)  # fmt: skip
        outcome.paths, outcome.rows, outcome.failures = done.paths, done.rows, len(done.failures)
        outcome.risk_rows = done.risk_rows
        total = None  # once
        report.failures += done.failures
        for model, values in done.vol_pct_by_model.items():
            report.vol_pct_by_model.setdefault(model, []).extend(values)
    report.seconds = time.perf_counter() - started
    log.info("%d dates: %d paths, %d rows stored; %d refused as stale", len(report.dates),
             report.paths, report.rows, len(report.stale))  # fmt: skip
    return report


def _freshness(
    engine: Engine, day: dt.date, tickers: Sequence[str], preloaded: Preloaded | None
) -> Freshness:
    """``day``'s freshness; from the prices in memory when a range read them once."""
    if preloaded is not None and tickers:
        prices = preloaded.prices
        dates = prices.loc[prices["ticker"].isin(list(tickers)), "date"]
        known = dates[dates <= pd.Timestamp(day)]
        return judge(None if known.empty else known.max().date(), day)
    with reachable(engine):
        return check_freshness(engine, day, tickers=tickers or None)
