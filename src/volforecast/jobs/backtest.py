"""Backtest job: prices through the quality gate, a walk-forward run, losses, an output file."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from volforecast.core.features import DailyData, by_ticker
from volforecast.data.db import ensure_schema
from volforecast.data.quality.gate import run_gate
from volforecast.data.quality.report import QualityReport
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_file
from volforecast.errors import DataSourceError, UnknownTickerError
from volforecast.evaluation.backtest import BacktestConfig, BacktestResult, blocks, walk_forward
from volforecast.evaluation.metrics import loss_table
from volforecast.jobs.market import market_from_prices, with_market
from volforecast.models.catalog import is_pooled
from volforecast.settings import QualitySettings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from volforecast.models.lstm.training import EpochCallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestReport:
    """Forecasts, their losses per ticker, model, horizon and proxy, and the gate's report."""

    result: BacktestResult
    losses: pd.DataFrame
    quality: QualityReport
    seconds: float
    out_file: str | None = None


def daily_data_by_ticker(
    prices: pd.DataFrame,
    quality: QualitySettings,
    tickers: Sequence[str] | None = None,
    unreadable: pd.DataFrame | None = None,
) -> tuple[dict[str, DailyData], QualityReport]:
    """Judge prices in the raw layout and turn each ticker's accepted rows into features.

    ``unreadable`` is what the source could not read (see
    :func:`~volforecast.data.quality.gate.run_gate`).

    Raises
    ------
    UnknownTickerError
        When none of the asked-for tickers has prices.
    """
    if tickers is not None:
        wanted = {t.strip().upper() for t in tickers}
        prices = prices[prices["ticker"].isin(wanted)]
        missing = sorted(wanted - set(prices["ticker"]))
        if len(missing) == len(wanted):
            msg = f"no prices for {', '.join(missing)}"
            raise UnknownTickerError(msg)
        if missing:
            log.warning("no prices for %s; going on with the others", ", ".join(missing))
    gate = run_gate(prices, quality, unreadable)
    return by_ticker(gate.accepted), gate.report


def load_prices(
    source: Path | Engine, tickers: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The prices of a file, or the stored prices and market series (None for a file)."""
    if isinstance(source, Path):
        return load_file(source).frame, None
    ensure_schema(source)
    return PriceRepository(source).load(tickers), MarketRepository(source).load()


def progress_total(
    prices: pd.DataFrame, config: BacktestConfig, tickers: Sequence[str] | None
) -> int:
    """The steps :func:`run_backtest` reports: one per ticker, one per block of each pooled model.

    The per-ticker pass visits each ticker, even with nothing to fit; pooled members of
    combinations count.
    """
    present = set(prices["ticker"].unique())
    n_tickers = len(present & set(tickers)) if tickers else len(present)
    pooled = [m for m in config.fitted_models if is_pooled(m)]
    return n_tickers + len(pooled) * len(blocks(config))


def run_backtest(  # noqa: PLR0913  (the job's options, each a CLI flag)
    prices: pd.DataFrame,
    config: BacktestConfig,
    *,
    quality: QualitySettings,
    tickers: Sequence[str] | None = None,
    workers: int = 1,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
    market: pd.Series | None = None,
    on_epoch: EpochCallback | None = None,
    pool_all: bool = False,
) -> BacktestReport:
    """Walk-forward backtest of ``config`` on ``prices`` (raw layout, any number of tickers).

    ``market`` is the market series HAR's market term reads (the stored one, for prices from
    the database); by default it is computed from every ticker of ``prices``. ``on_epoch``
    hears each epoch of the pooled LSTM's trainings. With ``pool_all`` the pooled models
    train on every ticker of ``prices``, as the service's do, and forecast ``tickers``.
    """
    started = time.perf_counter()
    if out is not None and out.suffix.lower() not in {".csv", ".parquet"}:
        msg = f"{out}: write forecasts to a .csv or a .parquet file"
        raise DataSourceError(msg)
    datasets, quality_report = daily_data_by_ticker(prices, quality, tickers)
    if market is None:
        # Every ticker of the file, as a live forecast reads every stored ticker.
        market = market_from_prices(prices, quality)["log_rv"]
    datasets = with_market(datasets, market)
    others: dict[str, DailyData] = {}
    if pool_all and any(is_pooled(m) for m in config.fitted_models):
        others, _ = daily_data_by_ticker(prices, quality)
        others = with_market({t: d for t, d in others.items() if t not in datasets}, market)
    result = walk_forward(
        datasets.values(), config, workers=workers, progress=progress, on_epoch=on_epoch,
        pool_with=others.values(),
    )  # fmt: skip
    tables = [
        loss_table(datasets[t], item.origin_positions, item.sigma2)
        for t, item in result.tickers.items()
        if len(item.origin_positions) and item.sigma2
    ]
    losses = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if out is not None:  # CSV or Parquet, by the suffix checked above
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            result.to_frame().to_csv(out, index=False)
        else:
            result.to_frame().to_parquet(out, index=False)
    seconds = time.perf_counter() - started
    origins = sum(len(i.origin_positions) for i in result.tickers.values())
    log.info(
        "Backtested %d models on %d tickers (%d origins) in %.0f s; %d fits failed",
        len(config.models), len(datasets), origins, seconds, len(result.failures),
    )  # fmt: skip
    out_file = None if out is None else str(out)
    return BacktestReport(result, losses, quality_report, seconds, out_file)
