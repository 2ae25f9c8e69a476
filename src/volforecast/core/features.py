"""One ticker's daily history as every model sees it: returns and realized variance.

Prices become features here and nowhere else, so the models, the backtest and the serving
layer cannot disagree about what a return or a realized variance is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from volforecast.core.realized import garman_klass_yang_zhang, overnight
from volforecast.core.returns import adjusted_ohlc
from volforecast.errors import InvalidSeriesError

# A day whose range estimate is exactly zero (no trade, or a flat print) would send logs to
# minus infinity; it is floored at this fraction of the series' median instead.
RV_FLOOR_FRACTION = 0.01
# Earnings are announced about once a fiscal quarter, near the same date each year: the
# earnings-season terms look back one to four quarters from the day forecast.
SEASON_LAGS = (63, 126, 189, 252)
_SEASON_HALF_WIDTH = 2
# Half-width of the centred window whose median is the "normal" level a day is compared to.
_SEASON_LEVEL_HALF_WIDTH = 22
SEASON_MEMORY = max(SEASON_LAGS) + _SEASON_HALF_WIDTH + _SEASON_LEVEL_HALF_WIDTH
"""Days, up to and including a forecast origin, that the season terms of its forecasts read:
the next day's lag of four quarters reaches furthest back."""


@dataclass(frozen=True)
class DailyData:
    """Aligned daily series of one ticker, oldest first."""

    ticker: str
    """The ticker, or a label for data that came without one."""
    dates: pd.DatetimeIndex
    """Trading days, strictly increasing."""
    returns_pct: np.ndarray
    """Percent log returns of the adjusted close, one per date (the day before the first date
    is the first price, which has no return of its own)."""
    rv_sigma2: np.ndarray
    """Range-based realized variance of the whole day in percent² (Garman–Klass with the
    overnight return), floored above zero; equals ``returns_pct**2`` when the data came
    without OHLC prices."""
    market_log_rv: np.ndarray | None = None
    """The market's log range variance on each date (:func:`market_log_rv`), attached by
    :meth:`with_market`; None when the data came alone."""
    overnight_sigma2: np.ndarray | None = None
    """The squared overnight return (the open over the previous close, both adjusted) in
    percent²: the part of ``rv_sigma2`` from before the session opened. None when the data
    came without OHLC prices."""

    def __post_init__(self) -> None:
        n = len(self.dates)
        arrays = [self.returns_pct, self.rv_sigma2]
        arrays += [a for a in (self.market_log_rv, self.overnight_sigma2) if a is not None]
        if any(len(array) != n for array in arrays):
            msg = (
                "dates, returns_pct, rv_sigma2, market_log_rv and overnight_sigma2 must have "
                "one value per day"
            )
            raise InvalidSeriesError(msg)
        if not (self.dates.is_unique and self.dates.is_monotonic_increasing):
            msg = f"{self.ticker}: dates must be strictly increasing"
            raise InvalidSeriesError(msg)
        if not all(np.isfinite(array).all() for array in arrays):
            msg = f"{self.ticker}: returns and realized variances must be finite (no NaN)"
            raise InvalidSeriesError(msg)
        for array in arrays:
            array.setflags(write=False)

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def last_date(self) -> pd.Timestamp:
        """The date of the last observation: the origin of a forecast made from this data."""
        return self.dates[-1]

    def head(self, n: int) -> DailyData:
        """The first ``n`` days (itself when that is every day: what it computed is kept)."""
        return self if n >= len(self) else self._slice(slice(None, n))

    @functools.cached_property
    def peaks(self) -> np.ndarray:
        """:func:`season_peaks` of these days, computed once (read-only)."""
        peaks = _season_peaks(self)
        peaks.setflags(write=False)
        return peaks

    def tail(self, n: int) -> DailyData:
        """The last ``n`` days (all of them when there are fewer)."""
        return self._slice(slice(max(len(self) - n, 0), None))

    @property
    def session_sigma2(self) -> np.ndarray | None:
        """The part of ``rv_sigma2`` from the open to the close (Garman–Klass), in percent².

        At least :data:`RV_FLOOR_FRACTION` of the day's variance, so that its log is finite on
        a day without a range; None when the data came without OHLC prices.
        """
        if self.overnight_sigma2 is None:
            return None
        floor = RV_FLOOR_FRACTION * self.rv_sigma2
        return np.asarray(np.maximum(self.rv_sigma2 - self.overnight_sigma2, floor))

    def _slice(self, days: slice) -> DailyData:
        # A series the data lacks stays None.
        sliced: dict[str, Any] = {name: array[days] for name, array in self._series().items()}
        return replace(self, dates=self.dates[days], **sliced)

    def with_market(self, market: pd.Series) -> DailyData:
        """The same days with the market's log range variance of each (see :func:`market_log_rv`).

        Raises
        ------
        InvalidSeriesError
            When ``market`` lacks one of the days: a market term must never be made up.
        """
        values = market.reindex(self.dates).to_numpy(dtype="float64")
        missing = self.dates[~np.isfinite(values)]
        if len(missing):
            msg = (
                f"{self.ticker}: the market series lacks {len(missing)} of its days (the first "
                f"{missing[0].date()}); ingest refreshes it, `volforecast ingest` again mends it"
            )
            raise InvalidSeriesError(msg)
        return replace(self, market_log_rv=values)

    def until(self, last: pd.Timestamp) -> DailyData:
        """The days up to and including ``last``."""
        return self.head(int(self.dates.searchsorted(last, side="right")))

    @classmethod
    def from_prices(cls, prices: pd.DataFrame, ticker: str | None = None) -> DailyData:
        """Features from one ticker's prices in the raw layout (``date``, OHLC, ``adj_close``).

        The first day only anchors the first return and is dropped.
        """
        frame = prices.sort_values("date")
        name = ticker or (str(frame["ticker"].iloc[0]) if "ticker" in frame else "series")
        values = frame[["open", "high", "low", "close", "adj_close"]].to_numpy(dtype="float64")
        if not (np.isfinite(values).all() and (values > 0).all()):
            msg = f"{name}: prices must be positive numbers (run them through the quality gate)"
            raise InvalidSeriesError(msg)
        adjusted = adjusted_ohlc(frame)
        returns = 100.0 * np.diff(np.log(frame["adj_close"].to_numpy(dtype="float64")))
        rv = garman_klass_yang_zhang(
            adjusted["open"], adjusted["high"], adjusted["low"], adjusted["close"]
        )[1:]
        overnight_sigma2 = 1e4 * overnight(adjusted["open"], adjusted["close"])[1:] ** 2
        dates = pd.DatetimeIndex(frame["date"].to_numpy()[1:])
        return cls(name, dates, returns, _floor(rv), overnight_sigma2=overnight_sigma2)

    @classmethod
    def from_returns(cls, returns_pct: pd.Series, ticker: str = "series") -> DailyData:
        """Features from percent returns alone; the squared return stands in for the range."""
        values = returns_pct.to_numpy(dtype="float64")
        dates = pd.DatetimeIndex(returns_pct.index)
        return cls(ticker, dates, values, _floor(values**2))

    def to_frame(self) -> pd.DataFrame:
        """The series there are (``returns_pct``, ``rv_sigma2``, …), indexed by date."""
        return pd.DataFrame(self._series(), index=self.dates)

    def to_arrays(self, suffix: str = "") -> dict[str, np.ndarray]:
        """The days as named arrays for :func:`numpy.savez`; :meth:`from_arrays` reads them.

        ``suffix`` is added to every name, so that one file can hold many tickers.
        """
        dates = self.dates.to_numpy().astype("datetime64[ns]").astype(np.int64)
        return {
            f"{name}{suffix}": array for name, array in {"dates": dates, **self._series()}.items()
        }

    @classmethod
    def from_arrays(
        cls, ticker: str, arrays: Mapping[str, np.ndarray], suffix: str = ""
    ) -> DailyData:
        """The data :meth:`to_arrays` wrote; a series that an older file lacks is None."""

        def read(name: str) -> np.ndarray | None:
            key = f"{name}{suffix}"
            return np.array(arrays[key]) if key in arrays else None

        dates = pd.DatetimeIndex(np.asarray(arrays[f"dates{suffix}"]).astype("datetime64[ns]"))
        return cls(
            ticker,
            dates,
            np.array(arrays[f"returns_pct{suffix}"]),
            np.array(arrays[f"rv_sigma2{suffix}"]),
            read("market_log_rv"),
            read("overnight_sigma2"),
        )

    def _series(self) -> dict[str, np.ndarray]:
        series = {"returns_pct": self.returns_pct, "rv_sigma2": self.rv_sigma2}
        optional = {"market_log_rv": self.market_log_rv, "overnight_sigma2": self.overnight_sigma2}
        return series | {name: array for name, array in optional.items() if array is not None}


def as_daily_data(
    data: DailyData | pd.Series | pd.DataFrame, ticker: str | None = None
) -> DailyData:
    """Accept what a user has: features, prices in the raw layout, or percent returns."""
    if isinstance(data, DailyData):
        return data
    if isinstance(data, pd.DataFrame):
        return DailyData.from_prices(data, ticker)
    # A first return of NaN (from a diff) is dropped; a NaN anywhere else is an error.
    start = data.first_valid_index()
    returns = data.loc[start:] if start is not None else data
    return DailyData.from_returns(returns, ticker or str(data.name or "series"))


def by_ticker(prices: pd.DataFrame) -> dict[str, DailyData]:
    """Features of each ticker in ``prices`` (raw layout, judged already) with two days or more."""
    return {
        str(ticker): DailyData.from_prices(rows, str(ticker))
        for ticker, rows in prices.groupby("ticker", sort=True)
        if len(rows) > 1
    }


def market_log_rv(datasets: Iterable[DailyData]) -> pd.Series:
    r"""The market's log range variance: each day's mean of :math:`\ln RV` across tickers.

    An equal-weighted, cross-sectional mean of logs (the log of a geometric mean), so one
    ticker's wild day moves it little. Each day averages the tickers that traded that day.

    Parameters
    ----------
    datasets : iterable of DailyData
        Every ticker there is; the mean on a day reads that day's data only.

    Returns
    -------
    pandas.Series
        Indexed by date, oldest first, named ``market_log_rv``.
    """
    columns = [pd.Series(np.log(d.rv_sigma2), index=d.dates) for d in datasets]
    if not columns:
        return pd.Series(dtype="float64", name="market_log_rv")
    panel = pd.concat(columns, axis=1, sort=True)
    return panel.mean(axis=1).rename("market_log_rv")


def season_peaks(data: DailyData) -> np.ndarray:
    """Each day's largest abnormal log variance within two sessions of it.

    A day's abnormal log variance is its log range variance less the median over the 45
    sessions centred on it; days without a full window after them are never read (see
    :func:`seasonal_regressors`). Kept with ``data`` (:attr:`DailyData.peaks`): the daily
    job reads them for each model of a ticker.
    """
    return data.peaks


def _season_peaks(data: DailyData) -> np.ndarray:
    log_rv = pd.Series(np.log(data.rv_sigma2))
    window = 2 * _SEASON_LEVEL_HALF_WIDTH + 1
    level = log_rv.rolling(window, center=True, min_periods=10).median()
    abnormal = (log_rv - level).fillna(0.0)
    peak = abnormal.rolling(2 * _SEASON_HALF_WIDTH + 1, center=True, min_periods=1).max()
    return peak.to_numpy()


def seasonal_regressors(
    peaks: np.ndarray, targets: np.ndarray, first: int | np.ndarray = 0
) -> np.ndarray:
    """The earnings-season terms of target days: ``targets.shape + (len(SEASON_LAGS),)``.

    ``targets`` are positions in the series ``peaks`` came from, up to 30 past its end; lag
    ``L`` reads the peak at ``target - L``. Zero where a lag reaches before ``first``, the
    series' first day (per target where several series lie end to end): no known season is
    no abnormal day. Raises ``ValueError`` where a peak would rest on days past the data,
    which a forecast made at its end cannot know.
    """
    columns = []
    for lag in SEASON_LAGS:
        source = targets - lag
        if (source + _SEASON_HALF_WIDTH + _SEASON_LEVEL_HALF_WIDTH >= len(peaks)).any():
            msg = f"a seasonal term {lag} days back would read past the data"
            raise ValueError(msg)
        columns.append(np.where(source >= first, peaks[np.maximum(source, 0)], 0.0))
    return np.stack(columns, axis=-1)


def _floor(rv: np.ndarray) -> np.ndarray:
    positive = rv[rv > 0]
    floor = RV_FLOOR_FRACTION * float(np.median(positive)) if len(positive) else 1e-6
    return np.asarray(np.maximum(rv, floor), dtype=np.float64)
