"""The market series from prices, when the gate leaves nothing of them."""

from __future__ import annotations

from tests.factories import clean_prices
from volforecast.jobs.market import market_from_prices
from volforecast.settings import QualitySettings


def test_prices_the_gate_rejects_whole_give_an_empty_market_series() -> None:
    # Given stored prices of one ticker whose every row fails the gate (negative prices)
    prices = clean_prices("AAA", days=40)
    prices[["open", "high", "low", "close", "adj_close"]] *= -1

    # When the market series is computed from them
    market = market_from_prices(prices, QualitySettings())

    # Then it is empty, with its columns, instead of failing on an empty concatenation
    assert market.empty, "no accepted ticker, so no market day"
    assert list(market.columns) == ["log_rv", "tickers"]


def test_accepted_prices_give_one_market_day_per_trading_day() -> None:
    prices = clean_prices("AAA", days=40)
    market = market_from_prices(prices, QualitySettings())
    # every day but the first, whose range variance needs the close before it
    assert len(market) == 39
    assert (market["tickers"] == 1).all()
