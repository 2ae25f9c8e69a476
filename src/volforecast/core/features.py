"""One ticker's daily history as every model sees it: returns and realized variance.

Prices become features here and nowhere else, so the models, the backtest and the serving
layer cannot disagree about what a return or a realized variance is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volforecast.core.realized import garman_klass_yang_zhang
from volforecast.core.returns import adjusted_ohlc
from volforecast.errors import InvalidSeriesError

# A day whose range estimate is exactly zero (no trade, or a flat print) would send logs to
# minus infinity; it is floored at this fraction of the series' median instead.
RV_FLOOR_FRACTION = 0.01


@dataclass(frozen=True)
class DailyData:
    """Aligned daily series of one ticker, oldest first.

    Attributes
    ----------
    ticker : str
        The ticker, or a label for data that came without one.
    dates : pandas.DatetimeIndex
        Trading days, strictly increasing.
    returns_pct : numpy.ndarray
        Percent log returns of the adjusted close, one per date (the day before the first date
        is the first price, which has no return of its own).
    rv_sigma2 : numpy.ndarray
        Range-based realized variance of the whole day in percent² (Garman–Klass with the
        overnight return), floored above zero; equals ``returns_pct**2`` when the data came
        without OHLC prices.
    """

    ticker: str
    dates: pd.DatetimeIndex
    returns_pct: np.ndarray
    rv_sigma2: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.dates)
        if len(self.returns_pct) != n or len(self.rv_sigma2) != n:
            msg = "dates, returns_pct and rv_sigma2 must have one value per day"
            raise InvalidSeriesError(msg)
        if not (self.dates.is_unique and self.dates.is_monotonic_increasing):
            msg = f"{self.ticker}: dates must be strictly increasing"
            raise InvalidSeriesError(msg)
        if not (np.isfinite(self.returns_pct).all() and np.isfinite(self.rv_sigma2).all()):
            msg = f"{self.ticker}: returns and realized variances must be finite (no NaN)"
            raise InvalidSeriesError(msg)
        for array in (self.returns_pct, self.rv_sigma2):
            array.setflags(write=False)

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def last_date(self) -> pd.Timestamp:
        """The date of the last observation: the origin of a forecast made from this data."""
        return self.dates[-1]

    def head(self, n: int) -> DailyData:
        """The first ``n`` days."""
        return DailyData(self.ticker, self.dates[:n], self.returns_pct[:n], self.rv_sigma2[:n])

    def tail(self, n: int) -> DailyData:
        """The last ``n`` days (all of them when there are fewer)."""
        start = max(len(self) - n, 0)
        return DailyData(
            self.ticker, self.dates[start:], self.returns_pct[start:], self.rv_sigma2[start:]
        )

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
        dates = pd.DatetimeIndex(frame["date"].to_numpy()[1:])
        return cls(name, dates, returns, _floor(rv))

    @classmethod
    def from_returns(cls, returns_pct: pd.Series, ticker: str = "series") -> DailyData:
        """Features from percent returns alone; the squared return stands in for the range."""
        values = returns_pct.to_numpy(dtype="float64")
        dates = pd.DatetimeIndex(returns_pct.index)
        return cls(ticker, dates, values, _floor(values**2))

    def to_frame(self) -> pd.DataFrame:
        """``returns_pct`` and ``rv_sigma2`` indexed by date."""
        return pd.DataFrame(
            {"returns_pct": self.returns_pct, "rv_sigma2": self.rv_sigma2}, index=self.dates
        )


def _floor(rv: np.ndarray) -> np.ndarray:
    positive = rv[rv > 0]
    floor = RV_FLOOR_FRACTION * float(np.median(positive)) if len(positive) else 1e-6
    return np.asarray(np.maximum(rv, floor), dtype=np.float64)
