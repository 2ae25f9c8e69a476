"""The market series and how it rides along with one ticker's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from volforecast.core.features import DailyData, market_log_rv
from volforecast.errors import InvalidSeriesError


def _data(ticker: str, start: str, rv: list[float]) -> DailyData:
    dates = pd.bdate_range(start, periods=len(rv))
    return DailyData(ticker, dates, np.zeros(len(rv)), np.asarray(rv, dtype=np.float64))


def test_the_market_is_the_mean_log_variance_of_the_tickers_trading_that_day() -> None:
    early = _data("AAA", "2020-01-06", [1.0, 4.0, 9.0])
    late = _data("BBB", "2020-01-07", [16.0, 1.0, 2.0])
    market = market_log_rv([early, late])
    assert list(market.index) == list(pd.bdate_range("2020-01-06", periods=4))
    expected = [0.0, np.log(4.0 * 16.0) / 2, np.log(9.0) / 2, np.log(2.0)]
    assert_allclose(market.to_numpy(), expected, rtol=1e-12)


def test_the_market_rides_along_when_the_data_is_cut() -> None:
    data = _data("AAA", "2020-01-06", [1.0, 4.0, 9.0, 16.0])
    market = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5], index=pd.bdate_range("2020-01-03", periods=5))
    joined = data.with_market(market)
    assert joined.market_log_rv is not None
    assert_allclose(joined.market_log_rv, [0.2, 0.3, 0.4, 0.5])
    assert_allclose(joined.head(2).market_log_rv, [0.2, 0.3])  # type: ignore[arg-type]
    assert_allclose(joined.tail(1).market_log_rv, [0.5])  # type: ignore[arg-type]
    assert_allclose(joined.until(joined.dates[2]).market_log_rv, [0.2, 0.3, 0.4])  # type: ignore[arg-type]
    assert list(joined.to_frame().columns) == ["returns_pct", "rv_sigma2", "market_log_rv"]


def test_a_market_series_without_one_of_the_days_is_refused() -> None:
    data = _data("AAA", "2020-01-06", [1.0, 4.0, 9.0])
    market = pd.Series([0.1, 0.3], index=data.dates[[0, 2]])
    with pytest.raises(InvalidSeriesError, match=r"lacks 1 of its days \(the first 2020-01-07\)"):
        data.with_market(market)
