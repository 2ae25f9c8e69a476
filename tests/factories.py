"""Test data: clean price walks on NYSE sessions, faults planted in them, simulated variance."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData
from volforecast.data.repositories.predictions import PredictionRow
from volforecast.data.sources import RAW_COLUMNS


def clean_prices(
    ticker: str,
    days: int = 300,
    *,
    seed: int = 0,
    start: dt.date = dt.date(2017, 12, 29),
    vol_pct: float = 1.2,
    price: float = 100.0,
) -> pd.DataFrame:
    """A frame in the raw price layout that passes every quality check."""
    rng = np.random.default_rng(seed)
    dates = pd.to_datetime(trading_days_after(start, days)).astype("datetime64[ns]")
    returns = rng.normal(0.0, vol_pct / 100, days)
    close = price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([price], close[:-1])) * np.exp(rng.normal(0, vol_pct / 400, days))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol_pct / 200, days)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol_pct / 200, days)))
    frame = pd.DataFrame(
        {
            "ticker": ticker,
            "date": dates,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": rng.integers(1_000_000, 5_000_000, days).astype("float64"),
            "split_coefficient": 1.0,
            "source": "test",
        }
    )
    return frame.loc[:, list(RAW_COLUMNS)]


def with_row(frame: pd.DataFrame, position: int, **values: float) -> pd.DataFrame:
    """A copy with some values of one row replaced."""
    out = frame.copy()
    for column, value in values.items():
        out.loc[out.index[position], column] = value
    return out


def quarterly_reports(n: int, first: int, seed: int = 3) -> DailyData:
    """Log-AR(1) variance with a day eight times as volatile every 63 sessions from ``first``."""
    rng = np.random.default_rng(seed)
    log_sigma2 = np.zeros(n)
    for t in range(1, n):
        log_sigma2[t] = 0.9 * log_sigma2[t - 1] + 0.15 * rng.standard_normal()
    log_sigma2[first::63] += np.log(8.0)
    # A range estimate is the day's variance times a log-normal error of its own.
    rv = np.exp(log_sigma2 + 0.3 * rng.standard_normal(n))
    returns = np.sqrt(np.exp(log_sigma2)) * rng.standard_normal(n)
    return DailyData("SIM", pd.bdate_range("2001-01-02", periods=n), returns, rv)


def live_forecasts(
    datasets: dict[str, DailyData],
    since: str,
    factors: dict[str, dict[str, float]],
    days: int,
    challenger: str | None = None,
) -> list[PredictionRow]:
    """Hand-made 1-day forecasts of versions, from the close ``since`` on, for ``days`` origins.

    ``factors[ticker][version]`` times the next day's realized volatility (percent) is what
    that version forecasts, so which version wins each day is known. The ``challenger``
    version's rows are stored as served to the live A/B, as the daily job stores them.
    """
    made_at = dt.datetime.now(dt.UTC)
    rows = []
    for ticker, by_version in factors.items():
        data = datasets[ticker]
        first = int(data.dates.get_loc(pd.Timestamp(since)))
        for i in range(first, first + days):
            realized_vol_pct = float(np.sqrt(data.rv_sigma2[i + 1]))
            rows += [
                PredictionRow(ticker, "GARCH", data.dates[i].date(), 1, data.dates[i + 1].date(),
                              realized_vol_pct * factor, version, None, made_at,
                              "challenger" if version == challenger else "production")
                for version, factor in by_version.items()
            ]  # fmt: skip
    return rows
