"""Monitoring jobs: the daily check of the production models, and a replay of past periods.

:func:`monitor` is what the daily DAG runs after the predictions: it judges the stored
forecasts against the realized volatility (``ml.forecast_accuracy``), runs the drift
detectors on every production model since the day it was trained (``ml.drift_checks``),
records the data-quality gate's findings, and queues for retraining every ticker whose model
raised an alert it has not yet been retrained for (``ml.retrain_requests``). Running it again
for the same day rewrites the same rows.

:func:`replay` walks a past period day by day as if live: each evening the model forecasts
the next day, the next day is observed, the detectors look, and an alert retrains the
model on the data up to that day. It answers "when would we have known?".
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from volforecast.core.features import DailyData
from volforecast.core.tail_risk import rolling_var_pct
from volforecast.data.db import reachable
from volforecast.data.quality.report import QualityReport
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.monitoring import AccuracyRow, CheckRow, MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import (
    ConfigurationError,
    InsufficientDataError,
    UnknownTickerError,
    VolforecastError,
)
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.market import market_from_prices, with_market
from volforecast.models.base import TAIL_POOL_DAYS, VolatilityModel
from volforecast.models.catalog import build_model, is_pooled, registered_members
from volforecast.monitoring.accuracy import ACCURACY_HORIZONS, accuracy_rows
from volforecast.monitoring.drift import VAR_COVERAGES, Alert, MonitorSeries, ScanResult, scan
from volforecast.registry.serving import ProductionModels, Served
from volforecast.settings import MonitoringSettings, Settings

log = logging.getLogger(__name__)


def monitor_series(
    model: VolatilityModel, data: DailyData, model_type: str, config: MonitoringSettings
) -> MonitorSeries:
    """The 1-day forecasts and VaR ``model`` made for every day after its reference window.

    The model's own training data ends the reference window; each later day of ``data`` is
    forecast from the close before it, with the parameters frozen, as the daily job did, and
    its VaR is the one this version serves from that close, from its own tails.
    ``model`` must be as loaded from the registry: :meth:`VolatilityModel.update` (which the
    API and the predict job call) moves the end of its data.

    Raises
    ------
    InsufficientDataError
        When the training window is shorter than ``config.reference_days`` plus a day.
    """
    trained_until = model.data.last_date
    start = int(data.dates.searchsorted(trained_until, side="right"))
    first = start - config.reference_days
    if first < 2:  # the first forecast is made at position first - 1, after a first return
        msg = (f"{data.ticker}: {config.reference_days} days before {trained_until.date()} "
               "are needed as the reference window")  # fmt: skip
        raise InsufficientDataError(msg)
    # The days before the reference window too: each day's VaR reads the model's own
    # standardized returns of the TAIL_POOL_DAYS before it, as the served one did.
    lookback = min(max(model.warmup_days, first - 1 - TAIL_POOL_DAYS), first - 1)
    origins = np.arange(lookback, len(data) - 1)
    sigma2 = model.forecast_paths(data, origins, 1)[:, 0]
    returns = data.returns_pct[origins + 1]
    judged = slice(len(origins) - (len(data) - first), None)
    var_pct = {c: rolling_var_pct(returns, sigma2, model.tail_shocks, c, pool_days=TAIL_POOL_DAYS,
                                  start=judged.start)[judged]
               for c in VAR_COVERAGES}  # fmt: skip
    return MonitorSeries(
        ticker=data.ticker, model_type=model_type, dates=data.dates[first:],
        returns_pct=data.returns_pct[first:], rv_sigma2=data.rv_sigma2[first:],
        sigma2=sigma2[judged], var_pct=var_pct, start=config.reference_days,
    )  # fmt: skip


@dataclass
class MonitorReport:
    """What one :func:`monitor` run found and stored."""

    as_of: dt.date | None = None
    checked: int = 0
    alerts: list[Alert] = field(default_factory=list)
    """Alert onsets since each model was trained."""
    fired_today: list[str] = field(default_factory=list)
    """``ticker model detector`` of every check that fired on the monitored day."""
    accuracy_rows: int = 0
    quality_findings: dict[str, int] = field(default_factory=dict)
    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """``ticker model`` of models trained on the monitored day or later: nothing to judge."""
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view, for ``--report-json`` and for Airflow."""
        return {
            **asdict(self),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "alerts": [_alert_json(a) for a in self.alerts],
            "seconds": round(self.seconds, 2),
        }  # fmt: skip


def _alert_json(alert: Alert, *left_out: str) -> dict[str, Any]:
    """An alert as the reports' JSON holds it: without its detail, nor ``left_out``."""
    kept = {k: v for k, v in asdict(alert).items() if k not in {"detail", *left_out}}
    return kept | {"observed_on": alert.observed_on.isoformat()}


def monitor(
    engine: Engine,
    settings: Settings,
    models: ProductionModels,
    *,
    as_of: dt.date | None = None,
    tickers: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> MonitorReport:
    """Check every production model; see the module docstring.

    ``as_of`` is the monitored day (default: each ticker's latest stored close); nothing
    after it is read, so a backfill sees what the job saw that evening.

    Raises
    ------
    DatabaseUnavailableError
        When the price or monitoring store cannot be reached.
    UnknownTickerError
        When none of ``tickers`` is served by a production model.
    """
    started = time.perf_counter()
    config = settings.monitoring
    report = MonitorReport(as_of=as_of)
    wanted = None if tickers is None else {t.strip().upper() for t in tickers}
    names = sorted({t for served in models.served() for t in served.models
                    if wanted is None or t in wanted})  # fmt: skip
    if tickers is not None and not names:
        msg = f"no production model serves {', '.join(tickers)}"
        raise UnknownTickerError(msg)
    now = dt.datetime.now(dt.UTC)
    store = MonitoringRepository(engine)
    datasets, quality, accuracy = _load(engine, settings, names, as_of)
    for ticker in sorted((wanted or set()) - set(names)):
        report.failures[ticker] = f"{ticker}: no production model serves it"
    with reachable(engine):
        fired = store.fired_days(names) if names else {}
    checks = _quality_checks(report, quality, datasets, fired, as_of or now.date())

    fired_by_model: dict[tuple[str, str], dict[str, list[dt.date]]] = {}
    for (ticker, model_type, detector), days in fired.items():
        fired_by_model.setdefault((ticker, model_type), {})[detector] = days
    work = [(served, ticker) for served in models.served() for ticker in sorted(served.models)
            if ticker in names]  # fmt: skip
    if on_start is not None:
        on_start(len(work))
    retrain: dict[str, list[Alert]] = {}
    for served, ticker in work:
        model = f"{ticker} {served.model_type}"
        try:
            fired_before = fired_by_model.get((ticker, served.model_type), {})
            scanned = _scan_model(served, ticker, datasets.get(ticker), fired_before, config)
        except (VolforecastError, ValueError, ArithmeticError) as exc:
            report.failures[model] = str(exc)
            log.warning("%s %s: %s", ticker, served.model_type, exc)
            continue
        finally:
            if progress is not None:
                progress(f"{served.model_type} {ticker}")
        if scanned is None:
            report.skipped.append(model)
            continue
        series, result = scanned
        report.checked += 1
        checks += _model_checks(ticker, served.model_type, series, result)
        report.fired_today += [f"{model} {c.detector}" for c in result.latest if c.fired]
        report.alerts += result.alerts
        if result.alerts:
            retrain.setdefault(ticker, []).extend(result.alerts)

    with reachable(engine):
        report.accuracy_rows = store.upsert_accuracy(accuracy, computed_at=now)
        store.upsert_checks(checks, created_at=now)
        report.queued = _queue_retrains(store, retrain, now)
    report.seconds = time.perf_counter() - started
    log.info("checked %d models in %.1f s: %d alerts, %d tickers queued for retraining",
             report.checked, report.seconds, len(report.alerts), len(report.queued))  # fmt: skip
    return report


def _load(
    engine: Engine,
    settings: Settings,
    names: list[str],
    as_of: dt.date | None,
) -> tuple[dict[str, DailyData], QualityReport | None, list[AccuracyRow]]:
    """The tickers' data up to ``as_of``, the gate's report, the stored forecasts judged.

    Only the forecasts served as production's are judged: a waiting challenger's, stored
    beside them, say ``served_as = 'challenger'`` and stay out, before and after it is
    promoted (the live A/B judges both, :mod:`volforecast.jobs.live_ab`).
    """
    with reachable(engine):
        prices = PriceRepository(engine).load(names, end=as_of) if names else None
        datasets, quality = ({}, None) if prices is None or prices.empty else (
            daily_data_by_ticker(prices, settings.quality))  # fmt: skip
        datasets = with_market(datasets, MarketRepository(engine).load(end=as_of))
        days = settings.monitoring.accuracy_window_days
        first_day = min((d.dates[max(len(d) - days, 0)].date()
                         for d in datasets.values()), default=None)  # fmt: skip
        stored = (PredictionRepository(engine).frame(names, start=first_day, end=as_of,
                                                     steps=ACCURACY_HORIZONS)
                  if first_day is not None else pd.DataFrame())  # fmt: skip
    accuracy = [
        row
        for ticker, data in datasets.items()
        for row in accuracy_rows(stored[stored["ticker"] == ticker] if len(stored) else stored,
                                 data, window_days=days)
    ]  # fmt: skip
    return datasets, quality, accuracy


def _quality_checks(
    report: MonitorReport,
    quality: QualityReport | None,
    datasets: dict[str, DailyData],
    fired: dict[tuple[str, str, str], list[dt.date]],
    default_day: dt.date,
) -> list[CheckRow]:
    """A ``data_quality`` check per ticker with findings, counted in ``report``."""
    checks: list[CheckRow] = []
    for ticker, entry in ({} if quality is None else quality.tickers).items():
        if entry.findings:
            report.quality_findings[ticker] = len(entry.findings)
            day = datasets[ticker].last_date.date() if ticker in datasets else default_day
            # The gate reads the whole history, so an old finding is found every day:
            # only the first day it is found is an alert.
            known = any(d < day for d in fired.get((ticker, "-", "data_quality"), []))
            rejected = float(entry.received - entry.accepted)
            checks.append(CheckRow(ticker, "-", "data_quality", day,
                                   float(len(entry.findings)), 0.0, True, not known,
                                   {"rows_rejected": rejected}))  # fmt: skip
    return checks


def _scan_model(
    served: Served,
    ticker: str,
    data: DailyData | None,
    fired: dict[str, list[dt.date]],
    config: MonitoringSettings,
) -> tuple[MonitorSeries, ScanResult] | None:
    """The detectors over one served model; None when it has nothing to judge yet."""
    if data is None:
        msg = f"{ticker}: no stored close passes the quality gate"
        raise InsufficientDataError(msg)
    with served.lock:
        series = monitor_series(served.models[ticker], data, served.model_type, config)
    if len(series.dates) <= series.start:
        return None  # trained on the monitored close or later
    # A detector that fired under the previous model and never went quiet must not
    # alert again on the new model's first day (and queue another retrain).
    return series, scan(series, config, _last_fired(fired, series.dates[series.start - 1].date()))


def _model_checks(
    ticker: str, model_type: str, series: MonitorSeries, result: ScanResult
) -> list[CheckRow]:
    """Rows of ``ml.drift_checks``: every alert onset, then every check of the monitored day."""
    day = series.dates[-1].date()
    onsets_today = {a.detector for a in result.alerts if a.observed_on == day}
    onsets = [CheckRow(a.ticker, a.model_type, a.detector, a.observed_on, a.statistic,
                       a.threshold, True, True, a.detail) for a in result.alerts]  # fmt: skip
    return onsets + [CheckRow(ticker, model_type, c.detector, day, c.statistic, c.threshold,
                              c.fired, c.detector in onsets_today, c.detail)
                     for c in result.latest]  # fmt: skip


def _queue_retrains(
    store: MonitoringRepository, retrain: dict[str, list[Alert]], now: dt.datetime
) -> list[str]:
    """Queue each alerted ticker, its five latest alerts the reason; the tickers newly queued."""
    queued = []
    for ticker, alerts in sorted(retrain.items()):
        latest = sorted(alerts, key=lambda a: a.observed_on)[-5:]
        reason = "; ".join(f"{a.model_type} {a.detector} on {a.observed_on}" for a in latest)
        if store.queue_retrain(ticker, latest[-1].observed_on, reason, now=now):
            queued.append(ticker)
    return queued


# ---------------------------------------------------------------------- replay


@dataclass
class ReplayReport:
    """What :func:`replay` saw: every alert, and when each ticker was retrained."""

    start: dt.date
    end: dt.date
    model: str
    alerts: list[Alert] = field(default_factory=list)
    retrains: list[tuple[str, dt.date]] = field(default_factory=list)
    tickers: int = 0
    days: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def alert_days(self) -> pd.Series:
        """Alerts per day (any ticker, any detector), for every replayed day with one."""
        days = pd.Series([a.observed_on for a in self.alerts], dtype="object")
        return days.value_counts().sort_index()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``monitor replay --report-json`` writes: every alert and retrain."""
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "model": self.model,
            "tickers": self.tickers, "days": self.days,
            "alerts": [_alert_json(a, "model_type") for a in self.alerts],
            "retrains": [[t, d.isoformat()] for t, d in self.retrains],
            "failures": self.failures,
        }  # fmt: skip


def replay(  # noqa: PLR0913  (the replay's options, each a CLI flag)
    prices: pd.DataFrame,
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    model: str = "garch",
    tickers: Sequence[str] | None = None,
    retrain: bool = True,
    progress: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Replay ``start``..``end`` as if live; see the module docstring.

    Each ticker's model is first fitted on everything before ``start``, and forecasts with its
    parameters frozen; a retrain also resets the detectors' reference window.
    """
    started = time.perf_counter()
    if start >= end:
        msg = f"the replay must start before it ends, got {start} to {end}"
        raise ConfigurationError(msg)
    config = settings.monitoring
    report = ReplayReport(start, end, model)
    datasets, _ = daily_data_by_ticker(prices, settings.quality, tickers)
    datasets = with_market(datasets, market_from_prices(prices, settings.quality)["log_rv"])
    if on_start is not None:
        on_start(len(datasets))
    for ticker, full in datasets.items():
        try:
            alerts, retrains = _replay_ticker(full.until(pd.Timestamp(end)), start, model,
                                              config, retrain=retrain)  # fmt: skip
        except (VolforecastError, ValueError, ArithmeticError) as exc:
            report.failures[ticker] = str(exc)
            log.warning("%s: %s", ticker, exc)
            continue
        finally:
            if progress is not None:
                progress(ticker)
        report.tickers += 1
        report.alerts += alerts
        report.retrains += [(ticker, day) for day in retrains]
    days = {d for data in datasets.values() for d in data.dates
            if pd.Timestamp(start) <= d <= pd.Timestamp(end)}  # fmt: skip
    report.days = len(days)
    report.alerts.sort(key=lambda a: (a.observed_on, a.ticker, a.detector))
    report.seconds = time.perf_counter() - started
    return report


def _replay_ticker(
    data: DailyData, start: dt.date, model_name: str, config: MonitoringSettings, *, retrain: bool
) -> tuple[list[Alert], list[dt.date]]:
    first = int(data.dates.searchsorted(pd.Timestamp(start)))
    if first >= len(data):
        msg = f"{data.ticker}: no prices from {start} on"
        raise InsufficientDataError(msg)
    fitted = build_model(model_name).fit(data.head(first), data.ticker)
    alerts: list[Alert] = []
    retrains: list[int] = []
    fired_before: dict[str, dt.date] = {}
    while True:
        series = monitor_series(fitted, data, model_name, config)
        result = scan(series, config, fired_before)
        # Alerts are causal: those up to a retrain are what the live job raised before it;
        # what follows depends on the new model, which inherits the detectors' last firing
        # days as the live monitor's does. A ticker retrained less than ``quiet_days`` ago
        # waits.
        due = [
            a
            for a in result.alerts
            if not retrains or _position(data, a.observed_on) - retrains[-1] > config.quiet_days
        ]
        if not retrain or not due:
            alerts += result.alerts
            return alerts, [data.dates[p].date() for p in retrains]
        day = due[0].observed_on
        alerts += [a for a in result.alerts if a.observed_on <= day]
        until = _position(data, day) + 1
        if until >= len(data):
            return alerts, [data.dates[p].date() for p in retrains]
        fired_before = _last_fired(result.fired, day)
        fitted = build_model(model_name).fit(data.head(until), data.ticker)
        retrains.append(until - 1)


def _position(data: DailyData, day: dt.date) -> int:
    return int(data.dates.searchsorted(pd.Timestamp(day)))


def _last_fired(fired: dict[str, list[dt.date]], day: dt.date) -> dict[str, dt.date]:
    # Each detector's last firing day up to ``day``, of those that had fired by then.
    return {
        detector: max(d for d in days if d <= day)
        for detector, days in fired.items()
        if days[0] <= day
    }


def per_ticker_models(models: Sequence[str]) -> tuple[str, ...]:
    """The per-ticker models of ``models``; none is a :class:`ConfigurationError`.

    The pooled LSTM serves every ticker: a retrain on a few would not replace it, and a
    combination with it as a member (``har+lstm``) has no LSTM on the new prices to pin.
    """
    per_ticker = tuple(
        name for name in models
        if not is_pooled(name) and not any(is_pooled(m) for m in registered_members(name))
    )  # fmt: skip
    if not per_ticker:
        msg = (
            "--queued retrains per-ticker models; the pooled LSTM retrains with --all, "
            "and so do the combinations that pin it (har+lstm)"
        )
        raise ConfigurationError(msg)
    return per_ticker


def queued_training(engine: Engine, models: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """The per-ticker models of ``models``, and the tickers queued for retraining, oldest first."""
    return per_ticker_models(models), MonitoringRepository(engine).pending_retrains()
