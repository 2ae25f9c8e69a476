"""The accuracy benchmark's cache of backtested paths, and the backtest that fills it.

With ``--cache DIR`` each fitted model's paths are kept in ``DIR/<model>.npz`` (the LSTM pooled
on every ticker in ``lstm@all.npz``) under a key of the tickers and the period, and a later
run reads them instead of backtesting that model again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from _common import save_npz
from _periods import HORIZONS
from volforecast.core.features import DailyData
from volforecast.evaluation.backtest import (
    BacktestConfig,
    TickerForecasts,
    add_combinations,
    blocks,
    learned_combination,
)
from volforecast.jobs.backtest import run_backtest
from volforecast.models.catalog import combination_members, is_pooled
from volforecast.settings import QualitySettings

LEARNED = " learned"
"""Suffix of a combination whose weights are learned (``har+lstm learned``)."""

Forecasts = dict[str, TickerForecasts]


def cache_key(tickers: list[str], config: BacktestConfig) -> str:
    return f"{config.train_end}|{config.test_end}|{config.refit_every}|{','.join(tickers)}"


def load_cached(
    directory: Path, model: str, key: str, file_name: str | None = None
) -> dict[str, np.ndarray] | None:
    """Paths of ``model`` per ticker from an earlier run with the same ``key``, if any.

    ``file_name`` (by default ``<model>.npz``) keeps apart paths of the same model made
    another way: the LSTM pooled on every ticker is ``lstm@all.npz``.
    """
    file = directory / (file_name or f"{model}.npz")
    if not file.exists():
        return None
    with np.load(file) as stored:
        if str(stored["key"]) != key:
            msg = f"{file} was written for other tickers or periods; delete it or the cache"
            raise SystemExit(msg)
        return {name: stored[name] for name in stored.files if name != "key"}


def save_cached(
    directory: Path, model: str, key: str, forecasts: Forecasts, file_name: str | None = None
) -> None:
    paths = {ticker: item.sigma2[model] for ticker, item in forecasts.items()}
    save_npz(directory / (file_name or f"{model}.npz"), key=np.array(key), **paths)


def backtest_with_cache(
    prices: pd.DataFrame,
    datasets: dict[str, DailyData],
    tickers: list[str],
    config: BacktestConfig,
    cache: Path | None,
    *,
    workers: int,
    pool_all: bool = False,
) -> tuple[Forecasts, float, int]:
    """Every model's paths per ticker: cached ones read, the others backtested (and cached).

    Every combination ``a+b`` comes twice: with equal weights, and as ``a+b learned`` with
    weights per step learned, pooled over tickers, on the forecasts realized before each
    block (:func:`~volforecast.evaluation.backtest.learned_combination`).

    Returns the forecasts, the seconds spent backtesting and the number of failed fits.
    """
    key = cache_key(tickers, config)

    def file_name(model: str) -> str:
        return f"{model}@all.npz" if pool_all and is_pooled(model) else f"{model}.npz"

    cached = {}
    if cache is not None:
        for model in config.fitted_models:
            paths = load_cached(cache, model, key, file_name(model))
            if paths is not None:
                cached[model] = paths
    missing = tuple(m for m in config.fitted_models if m not in cached)
    print(f"from the cache: {', '.join(cached) or 'none'}; to backtest: {', '.join(missing)}")
    # With nothing missing this only finds each ticker's origins.
    report = run_backtest(
        prices,
        replace(config, models=missing),
        quality=QualitySettings(),
        tickers=tickers,
        workers=workers,
        pool_all=pool_all,
    )
    forecasts = report.result.tickers
    if cache is not None:
        for model in missing:
            save_cached(cache, model, key, forecasts, file_name(model))
    for model, paths in cached.items():
        for ticker, item in forecasts.items():
            item.sigma2[model] = paths[ticker]
    learned = {}
    starts = [first for first, _ in blocks(config)]
    for name in config.models:
        members = combination_members(name)
        if members:
            learned[name + LEARNED] = learned_combination(datasets, forecasts, members, starts)
    add_combinations(forecasts, datasets, config)
    for name, combination in learned.items():
        for ticker, paths in combination.sigma2.items():
            forecasts[ticker].sigma2[name] = paths
        last = combination.weights[-1]
        print(
            f"{name}: weights of the last block at steps 1, 5, 22: "
            + "; ".join(f"{np.round(last[s - 1], 2).tolist()}" for s in HORIZONS)
        )
    return forecasts, report.seconds, len(report.result.failures)
