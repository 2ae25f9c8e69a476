"""The daily detector suite over one model's forecasts of one ticker.

:func:`scan` walks the monitored days in order and asks every detector, on each day, about
the data up to that day only, so a scan of a whole period gives the alerts a daily job would
have raised on each of its days. An alert is the *onset* of a detector's firing: a regime
that stays high for a month is one alert, not twenty, and a detector that fired within the
last ``quiet_days`` days raises no new alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from volforecast.monitoring.detectors import (
    Check,
    Detector,
    LevelReference,
    cusum,
    cusum_threshold,
    ljung_box,
    psi,
    var_exceedance,
)
from volforecast.settings import MonitoringSettings

VAR_COVERAGES = (0.95, 0.99)
"""The VaR levels the exceedance detectors judge (``kupiec_95``, ``kupiec_99``)."""


@dataclass(frozen=True)
class Alert:
    """A detector that fired for one ticker and model on one day."""

    ticker: str
    model_type: str
    detector: Detector
    observed_on: dt.date
    statistic: float
    threshold: float
    detail: dict[str, float]

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.observed_on} {self.ticker} {self.model_type}: {self.detector} "
            f"{self.statistic:.3g} (fires from {self.threshold:.3g})"
        )


@dataclass(frozen=True)
class MonitorSeries:
    """What the detectors read for one ticker and model, oldest day first."""

    ticker: str
    model_type: str
    dates: pd.DatetimeIndex
    """Trading days."""
    returns_pct: np.ndarray
    """Percent log returns."""
    rv_sigma2: np.ndarray
    """Range-based realized variance, percent²."""
    sigma2: np.ndarray
    """The model's 1-day variance forecast for each day, made at the previous close."""
    var_pct: Mapping[float, np.ndarray]
    """By coverage (0.95 and 0.99): the 1-day VaR the model served for each day, made at the
    previous close from its own tails; NaN where it had too few days for them."""
    start: int
    """The first monitored day; the ``reference_days`` before it (the end of the model's
    training window) stand for normal."""


@dataclass(frozen=True)
class ScanResult:
    """Alert onsets over the monitored days, every check of the last day, and firing days.

    ``fired`` holds, per detector, every day it fired, alert or not: what a later scan of a
    retrained model needs to keep a detector that never went quiet from alerting again.
    """

    alerts: list[Alert]
    latest: list[Check]
    fired: dict[str, list[dt.date]]


def rolling_rmse_check(
    rv_sigma2: np.ndarray, sigma2: np.ndarray, threshold_vol_pct: float
) -> Check:
    """RMSE and MAE of volatility forecasts (percent) against range-based realized volatility."""
    error = np.sqrt(rv_sigma2) - np.sqrt(sigma2)
    value = float(np.sqrt(np.mean(error**2)))
    detail = {"mae_vol_pct": float(np.mean(np.abs(error))), "days": float(len(error))}
    return Check("rmse", value, threshold_vol_pct, value > threshold_vol_pct, detail)


def scan(
    series: MonitorSeries,
    config: MonitoringSettings,
    fired_before: Mapping[str, dt.date] | None = None,
) -> ScanResult:
    """Run every detector on each monitored day of ``series``; see the module docstring.

    ``fired_before`` gives the last day each detector fired under a previous model of the
    same ticker, so the quiet period runs on across a retrain.

    Raises
    ------
    ValueError
        When fewer than ``config.reference_days`` days precede ``series.start``.
    """
    start, n = series.start, len(series.dates)
    if start < config.reference_days:
        msg = (f"{series.ticker}: {config.reference_days} reference days are needed before "
               f"the first monitored day, got {start}")  # fmt: skip
        raise ValueError(msg)
    reference = slice(start - config.reference_days, start)
    log_rv = np.log(series.rv_sigma2)
    log_ratio = log_rv - np.log(series.sigma2)
    level = LevelReference.from_window(log_rv[reference], config.recent_days,
                                       alpha=config.level_alpha)  # fmt: skip

    # The log ratio of realized to forecast variance is the forecast error: near Gaussian,
    # and with a mean below zero even for a perfect forecast (Jensen), so it is centred and
    # scaled on the reference window rather than on theory.
    centre = float(log_ratio[reference].mean())
    scale = float(log_ratio[reference].std(ddof=1)) or 1.0
    h = cusum_threshold(2.0 * config.cusum_arl0_days, config.cusum_k)
    run = cusum((log_ratio[start:] - centre) / scale, h=h, k=config.cusum_k)

    alerts: list[Alert] = []
    # Positions in ``series``; a day before it counts as long ago.
    last_fired = {detector: int(series.dates.searchsorted(pd.Timestamp(day)))
                  for detector, day in (fired_before or {}).items()}  # fmt: skip
    fired: dict[str, list[dt.date]] = {}

    def onset(check: Check, t: int) -> None:
        if check.fired:
            if t - last_fired.get(check.detector, -(10**9)) > config.quiet_days:
                alerts.append(Alert(series.ticker, series.model_type, check.detector,
                                    series.dates[t].date(), check.statistic, check.threshold,
                                    check.detail))  # fmt: skip
            last_fired[check.detector] = t
            fired.setdefault(check.detector, []).append(series.dates[t].date())

    for position, direction in zip(run.alarms.tolist(), run.direction.tolist(), strict=True):
        statistic = run.upper[position] if direction > 0 else run.lower[position]
        onset(Check("cusum", float(statistic), h, True, {"direction": float(direction)}),
              start + position)  # fmt: skip

    latest: list[Check] = []
    for t, checks in _daily_checks(series, config, level, reference):
        for check in checks:
            onset(check, t)
        latest = checks
    if n > start:
        last = n - 1 - start
        statistic = float(max(run.upper[last], run.lower[last]))
        latest = [*latest, Check("cusum", statistic, h, bool(last in run.alarms),
                                 {"upper": float(run.upper[last]),
                                  "lower": float(run.lower[last])})]  # fmt: skip
    alerts.sort(key=lambda a: (a.observed_on, a.detector))
    for days in fired.values():
        days.sort()
    return ScanResult(alerts, latest, fired)


def _daily_checks(
    series: MonitorSeries, config: MonitoringSettings, level: LevelReference, reference: slice
) -> Iterator[tuple[int, list[Check]]]:
    """Each monitored day's position and every detector but CUSUM on the data up to it."""
    returns, rv, sigma2 = series.returns_pct, series.rv_sigma2, series.sigma2
    log_rv = np.log(rv)
    # PSI compares standardized returns: raw returns cluster in volatility even when the
    # model is right, which would break its null of two samples of one distribution.
    standardized = returns / np.sqrt(sigma2)
    for t in range(series.start, len(series.dates)):
        end = t + 1

        def window(days: int, end: int = end) -> slice:
            return slice(max(end - days, 0), end)

        var_days = window(config.var_window_days)
        lb_days = window(config.ljung_box_window_days)
        yield t, [
            level.check(log_rv[window(config.recent_days)]),
            *(var_exceedance(returns[var_days], series.var_pct[coverage][var_days],
                             coverage=coverage, alpha=config.var_alpha)
              for coverage in VAR_COVERAGES),
            ljung_box(returns[lb_days], sigma2[lb_days], lags=config.ljung_box_lags,
                      alpha=config.ljung_box_alpha),
            psi(standardized[reference], standardized[window(config.psi_window_days)],
                alpha=config.psi_alpha),
            rolling_rmse_check(rv[window(config.accuracy_window_days)],
                               sigma2[window(config.accuracy_window_days)],
                               config.rmse_threshold_vol_pct),
        ]  # fmt: skip
