"""The daily prediction job: every production model's path, VaR, ES and term structure.

:func:`predict_all` is what ``volforecast predict --all`` and the daily DAG run. Each
production model forecasts every ticker it serves from the latest stored close (or one on or
before a date, for a backfill) and the job stores, by upsert on each table's key:

- the 30-day path in ``ml.volatility_predictions``;
- its VaR and expected shortfall at 1 and 10 days in ``ml.risk_forecasts``, and its
  annualised term structure to a year in ``ml.term_structures``: the figures
  ``GET /risk/{ticker}`` and the model card answer with
  (:func:`volforecast.jobs.risk.outlook_from`).

A challenger waiting for live evidence forecasts its path only, for the live A/B.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine

from volforecast.core.features import DailyData
from volforecast.data.db import reachable
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow, ServedAs
from volforecast.data.repositories.risk import RiskRepository, RiskRow, TermRow
from volforecast.errors import InvalidSeriesError, VolforecastError
from volforecast.jobs.predict import Prediction, Preloaded, model_key, path_from
from volforecast.jobs.risk import outlook_from
from volforecast.models.base import MAX_HORIZON
from volforecast.registry.names import CHALLENGER, PRODUCTION
from volforecast.registry.serving import ProductionModels, Served
from volforecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictFailure:
    """A ticker and model type that gave no forecast (or no risk figures), and why."""

    ticker: str
    model_type: str
    message: str


@dataclass
class PredictReport:
    """What :func:`predict_all` stored."""

    paths: int = 0
    rows: int = 0
    risk_rows: int = 0
    """Rows of ``ml.risk_forecasts`` and ``ml.term_structures`` together."""
    failures: list[PredictFailure] = field(default_factory=list)
    seconds: float = 0.0
    vol_pct_by_model: dict[str, list[float]] = field(default_factory=dict)
    """Each model type's 1-day forecasts, for the summary statistics."""

    @property
    def complete(self) -> bool:
        """Every served ticker and model type gave a forecast and its risk figures."""
        return not self.failures


@dataclass
class _Batch:
    """Rows waiting to be written, and the writes."""

    engine: Engine
    size: int
    paths: list[PredictionRow] = field(default_factory=list)
    risks: list[RiskRow] = field(default_factory=list)
    terms: list[TermRow] = field(default_factory=list)

    def write(self, report: PredictReport, *, force: bool = False) -> None:
        if not force and len(self.paths) < self.size:
            return
        # Paths first: a job killed between the two writes leaves risk figures missing, and
        # the next run for the day writes them; never figures for a path not stored.
        with reachable(self.engine):
            report.rows += PredictionRepository(self.engine).upsert(self.paths)
            report.risk_rows += RiskRepository(self.engine).upsert(self.risks, self.terms)
        self.paths, self.risks, self.terms = [], [], []


def predict_all(  # noqa: PLR0913  (the job's options, each a CLI flag)
    engine: Engine,
    settings: Settings,
    models: ProductionModels,
    *,
    model_types: Sequence[str] | None = None,
    tickers: Sequence[str] | None = None,
    horizon: int = MAX_HORIZON,
    as_of: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    preloaded: Preloaded | None = None,
    challengers: ProductionModels | None = None,
) -> PredictReport:
    """Forecast every production model for every ticker it serves and store what it gives.

    ``challengers``: those waiting for live evidence forecast too (:mod:`.live_ab`).

    Each path starts at the ticker's latest stored close, or its latest close on or before
    ``as_of`` (a backfill: the forecast that would have been made that evening, with today's
    production parameters). Storing is an upsert on ticker, model type, origin, step (or
    level and horizon) and version: running the job again for the same day rewrites the
    same rows and adds none. ``preloaded`` (from :func:`predict_sessions`) holds prices read
    once for many dates; they are cut at ``as_of`` here, so each date sees what it would have
    seen that evening.

    Raises
    ------
    DatabaseUnavailableError
        When the price or prediction store cannot be reached.
    """
    started = time.perf_counter()
    if not 1 <= horizon <= MAX_HORIZON:
        msg = f"horizon must be between 1 and {MAX_HORIZON} trading days, got {horizon}"
        raise ValueError(msg)
    wanted_types = None if model_types is None else {model_key(m) for m in model_types}
    wanted_tickers = None if tickers is None else {t.strip().upper() for t in tickers}
    work = _work(models, wanted_types, wanted_tickers)
    live = [] if challengers is None else _work(challengers, wanted_types, wanted_tickers)
    if on_start is not None:
        on_start(len(work) + len(live))
    report = PredictReport()
    # A ticker asked for by name that no production model serves is a failure, not silence.
    report.failures += _unserved(wanted_tickers or set(), wanted_types, work)
    work, waiting = work + live, {id(served) for served, _ in live}
    needed = sorted({ticker for _, ticker in work})  # one query and gate pass, as training
    if preloaded is None:
        preloaded = Preloaded.read(engine, settings, needed, as_of)
    datasets = preloaded.datasets(as_of, needed, settings.quality)
    made_at = dt.datetime.now(dt.UTC)
    batch = _Batch(engine, settings.api.write_batch)
    for served, ticker in work:
        data = datasets.get(ticker)
        served_as: ServedAs = CHALLENGER if id(served) in waiting else PRODUCTION
        label = served.model_type + ("" if served_as == PRODUCTION else f" ({served_as})")
        try:
            if data is None:
                when = "" if as_of is None else f" on or before {as_of}"
                msg = f"{ticker}: no stored close{when} passes the quality gate"
                raise InvalidSeriesError(msg)
            prediction, problem = _forecast(served, ticker, data, served_as, batch, made_at)
        except (VolforecastError, ValueError, ArithmeticError) as exc:
            # One ticker's bad series must not cost the others their forecast.
            report.failures.append(PredictFailure(ticker, label, str(exc)))
            log.warning("%s %s: %s", ticker, served.model_type, exc)
            continue
        finally:
            if progress is not None:
                progress(f"{served.model_type} {ticker}")
        if problem is not None:  # a path, but no risk figures
            report.failures.append(PredictFailure(ticker, label, problem))
            log.warning("%s", problem)
        batch.paths += prediction.rows(horizon, made_at)
        report.paths += 1
        report.vol_pct_by_model.setdefault(label, []).append(prediction.vol_pct[0])
        batch.write(report)
    batch.write(report, force=True)
    report.seconds = time.perf_counter() - started
    log.info("stored %d forecast paths (%d rows, %d risk rows) in %.1f s; %d failed",
             report.paths, report.rows, report.risk_rows, report.seconds,
             len(report.failures))  # fmt: skip
    return report


def _forecast(
    served: Served,
    ticker: str,
    data: DailyData,
    served_as: ServedAs,
    batch: _Batch,
    made_at: dt.datetime,
) -> tuple[Prediction, str | None]:
    """One model's path for ``ticker``, its risk figures queued; why there are none, if not."""
    model = served.models[ticker]
    if served_as == CHALLENGER:
        return path_from(served, model, data, served_as), None
    outlook = outlook_from(served, model, data)
    if outlook.risk is not None:
        batch.risks += outlook.risk.rows(made_at)
    batch.terms += outlook.term_rows(made_at)
    return outlook.prediction, outlook.problem


def _work(
    models: ProductionModels, types: set[str] | None, tickers: set[str] | None
) -> list[tuple[Served, str]]:
    """Each loaded version with each ticker it serves, of the wanted types and tickers."""
    return [
        (served, ticker)
        for served in models.served()
        if types is None or _family(served) in types
        for ticker in sorted(served.models)
        if tickers is None or ticker in tickers
    ]


def _unserved(
    wanted: set[str], types: set[str] | None, work: list[tuple[Served, str]]
) -> list[PredictFailure]:
    """A failure for each ticker of ``wanted`` that no production model of ``types`` serves."""
    kinds = "" if types is None else " " + "/".join(sorted(types)).upper()
    return [PredictFailure(ticker, "-", f"{ticker}: no production{kinds} model serves it; "
                           f"train one with `volforecast train --tickers {ticker}`")
            for ticker in sorted(wanted - {t for _, t in work})]  # fmt: skip


def _family(served: Served) -> str:
    # garch_volatility_aapl -> garch; gjr_garch_t_volatility_aapl -> gjr-garch-t
    return served.name.split("_volatility_", maxsplit=1)[0].replace("_", "-")


def summary(report: PredictReport) -> dict[str, dict[str, float]]:
    """Count, mean, min and max of each model type's 1-day volatility forecasts, in percent."""
    return {
        model: {
            "count": float(len(values)),
            "mean_vol_pct": float(np.mean(values)),
            "min_vol_pct": float(np.min(values)),
            "max_vol_pct": float(np.max(values)),
        }
        for model, values in report.vol_pct_by_model.items()
    }
