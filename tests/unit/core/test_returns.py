"""Percent log returns and the adjustment of OHLC prices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from volforecast.core.returns import adjusted_ohlc, log_returns_pct


def test_log_returns_are_percent_by_hand() -> None:
    prices = pd.Series([100.0, 110.0, 99.0])
    got = log_returns_pct(prices)
    assert math.isnan(got.iloc[0])
    assert_allclose(got.iloc[1:], [100 * math.log(1.1), 100 * math.log(0.9)], rtol=1e-12)


def test_log_returns_refuse_non_positive_prices() -> None:
    with pytest.raises(ValueError, match="positive"):
        log_returns_pct(pd.Series([1.0, 0.0]))


def test_adjustment_removes_a_split_from_the_overnight_return() -> None:
    # A 2:1 split on day 2: traded prices halve, the adjusted close of day 1 was already halved.
    prices = pd.DataFrame(
        {
            "open": [100.0, 50.5],
            "high": [102.0, 51.0],
            "low": [99.0, 50.0],
            "close": [100.0, 50.0],
            "adj_close": [50.0, 50.0],
        }
    )
    adjusted = adjusted_ohlc(prices)
    assert_allclose(adjusted.loc[0].to_numpy(), [50.0, 51.0, 49.5, 50.0])
    assert_allclose(adjusted.loc[1].to_numpy(), [50.5, 51.0, 50.0, 50.0])
    overnight = np.log(adjusted["open"].iloc[1] / adjusted["close"].iloc[0])
    assert overnight == pytest.approx(math.log(1.01), rel=1e-12)
    # Ratios within a day are untouched, so range estimators see the same numbers.
    assert_allclose(adjusted["high"] / adjusted["low"], prices["high"] / prices["low"])
