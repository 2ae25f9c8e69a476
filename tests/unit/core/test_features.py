"""The series beside the returns (market, overnight) and how they ride along with the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal

from volforecast.core.features import DailyData, market_log_rv, season_peaks
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


def _prices() -> pd.DataFrame:
    """Four days; a 2-for-1 split before day 3 halves the traded prices from then on."""
    return pd.DataFrame(
        {
            "ticker": "AAA",
            "date": pd.bdate_range("2020-01-06", periods=4),
            "open": [100.0, 102.0, 50.5, 49.0],
            "high": [101.0, 104.0, 51.0, 50.0],
            "low": [99.0, 101.0, 49.5, 48.0],
            "close": [100.0, 103.0, 50.0, 49.5],
            "adj_close": [50.0, 51.5, 50.0, 49.5],
        }
    )


def test_the_overnight_move_is_the_adjusted_open_over_the_previous_close() -> None:
    data = DailyData.from_prices(_prices())
    # Adjusted opens: 51.0, 50.5, 49.0 against the adjusted closes before them, 50, 51.5, 50.
    expected = 1e4 * np.log([51.0 / 50.0, 50.5 / 51.5, 49.0 / 50.0]) ** 2
    assert data.overnight_sigma2 is not None
    assert_allclose(data.overnight_sigma2, expected, rtol=1e-12)
    # The rest of the day's variance is the session's Garman-Klass estimate.
    log_hl = np.log([104.0 / 101.0, 51.0 / 49.5, 50.0 / 48.0])
    log_co = np.log([103.0 / 102.0, 50.0 / 50.5, 49.5 / 49.0])
    garman_klass = 1e4 * (0.5 * log_hl**2 - (2 * np.log(2) - 1) * log_co**2)
    assert_allclose(data.session_sigma2, garman_klass, rtol=1e-10)  # type: ignore[arg-type]
    assert_allclose(data.session_sigma2 + data.overnight_sigma2, data.rv_sigma2, rtol=1e-12)  # type: ignore[operator]


def test_returns_alone_have_no_overnight_move() -> None:
    returns = pd.Series([1.0, -2.0, 0.5], index=pd.bdate_range("2020-01-06", periods=3))
    data = DailyData.from_returns(returns)
    assert data.overnight_sigma2 is None
    assert data.session_sigma2 is None


def test_a_session_without_a_range_keeps_a_floor() -> None:
    dates = pd.bdate_range("2020-01-06", periods=2)
    data = DailyData("AAA", dates, np.zeros(2), np.array([2.0, 4.0]), None, np.array([2.0, 1.0]))
    assert_allclose(data.session_sigma2, [0.02, 3.0])  # type: ignore[arg-type]


def test_every_series_rides_along_when_cut_and_when_written_to_arrays() -> None:
    data = DailyData.from_prices(_prices())
    joined = data.with_market(pd.Series([0.1, 0.2, 0.3], index=data.dates))
    assert_allclose(joined.head(2).overnight_sigma2, data.overnight_sigma2[:2])  # type: ignore[arg-type,index]
    assert list(joined.to_frame().columns) == [
        "returns_pct",
        "rv_sigma2",
        "market_log_rv",
        "overnight_sigma2",
    ]
    arrays = joined.to_arrays(suffix="_3")
    assert set(arrays) == {f"{name}_3" for name in ["dates", *joined.to_frame().columns]}
    back = DailyData.from_arrays("AAA", arrays, suffix="_3")
    assert_frame_equal(back.to_frame(), joined.to_frame(), check_index_type=False)
    # A file written before a series existed reads as data without it.
    del arrays["overnight_sigma2_3"]
    assert DailyData.from_arrays("AAA", arrays, suffix="_3").overnight_sigma2 is None


def test_season_peaks_are_kept_with_their_series_and_never_read_later_days(
    gspc: DailyData,
) -> None:
    data = gspc.head(600)
    assert data.head(len(data)) is data, "every day of a series is the series itself"
    peaks = season_peaks(data)
    assert season_peaks(data) is peaks, "computed once"
    with pytest.raises(ValueError, match="read-only"):
        peaks[0] = 1.0
    # A shorter series has peaks of its own: near its end they lack the days after.
    shorter = data.head(500)
    assert shorter is not data
    assert not np.array_equal(season_peaks(shorter), peaks[:500])
