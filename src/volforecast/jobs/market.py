"""The market series: refreshed from the stored prices, attached to each ticker's data.

HAR's market term needs every ticker's range variance on every day, while a forecast for one
ticker reads that ticker alone. So ingest stores the cross-sectional mean once a day
(``market.market_variance``), and the jobs and the API attach it to whatever they load.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlalchemy import Engine

from volforecast.core.features import DailyData, by_ticker, market_log_rv
from volforecast.data.quality.gate import run_gate
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import InvalidSeriesError
from volforecast.settings import QualitySettings

log = logging.getLogger(__name__)

# Prices read before the first day refreshed: a day's range variance needs the close before
# it, and the floor of a flat day is a fraction of a few months' median.
WARMUP_DAYS = 120


_NO_MARKET = pd.DataFrame(
    {"log_rv": pd.Series(dtype="float64"), "tickers": pd.Series(dtype="int64")},
    index=pd.DatetimeIndex([]),
)


def market_from_prices(prices: pd.DataFrame, quality: QualitySettings) -> pd.DataFrame:
    """``log_rv`` and ``tickers`` by date from prices in the raw layout, quality-gated."""
    datasets = by_ticker(run_gate(prices, quality).accepted).values()
    if not datasets:  # every row refused: no day has a market figure
        return _NO_MARKET.copy()
    tickers = pd.concat([pd.Series(1, index=d.dates) for d in datasets]).groupby(level=0).sum()
    return pd.DataFrame({"log_rv": market_log_rv(datasets), "tickers": tickers})


def refresh_market(engine: Engine, quality: QualitySettings) -> int:
    """Recompute the stored market series from where prices last changed; returns days stored.

    Every price write marks the series stale from its earliest changed day in the same
    transaction (:func:`~volforecast.data.repositories.market.mark_market_stale`), so the mark
    outlives a load that is killed before it refreshes: whichever refresh comes next
    recomputes from the earliest mark, and the series again equals one computed from every
    stored price.
    Nothing is marked: nothing to do (0). A database with prices but no series yet (upgraded
    from before it existed) gets all of it.
    """
    market_repository = MarketRepository(engine)
    mark = market_repository.stale()
    empty = market_repository.count() == 0
    if mark is None and not empty:
        return 0
    since = None if empty or mark is None else mark.since
    start = None if since is None else since - dt.timedelta(days=WARMUP_DAYS)
    prices = PriceRepository(engine).load(start=start)
    market = market_from_prices(prices, quality) if not prices.empty else _NO_MARKET
    if since is not None:
        market = market[market.index >= pd.Timestamp(since)]
    stored = market_repository.replace(
        market["log_rv"], market["tickers"], computed_at=dt.datetime.now(dt.UTC), clears=mark
    )
    log.info("market series: %d days refreshed from %s", stored, since or "the first price")
    return stored


def with_market(datasets: dict[str, DailyData], market: pd.Series) -> dict[str, DailyData]:
    """Each ticker's data with ``market`` attached, where it covers every one of its days.

    A ticker it does not cover keeps its data without it: a model that needs no market
    still forecasts, and one that does says so (the reason is logged here).
    """
    joined, uncovered = {}, []
    for ticker, data in datasets.items():
        try:
            joined[ticker] = data.with_market(market)
        except InvalidSeriesError as exc:
            uncovered.append(str(exc))
            joined[ticker] = data
    if uncovered:
        log.warning("the market series does not cover %d tickers: %s", len(uncovered),
                    "; ".join(uncovered[:3]) + ("; ..." if len(uncovered) > 3 else ""))  # fmt: skip
    return joined
