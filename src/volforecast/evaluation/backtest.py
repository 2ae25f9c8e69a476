"""Walk-forward backtest: forecasts from every trading day of a test period, as if live.

The test period is cut into blocks of ``refit_every`` NYSE sessions. Before a block, each
model is fitted on the data up to the last session before the block (the first block's fit
uses the data through ``train_end``); within the block it forecasts from every origin with
its parameters frozen, filtering each origin's own history. So a forecast made on day ``t``
uses the closes up to ``t`` and nothing later, and the window expands block by block.

Per-ticker models run ticker by ticker (in worker processes when asked). The LSTM is pooled:
at each block one network is trained on every ticker's data up to that block, starting from
the previous block's weights (a warm start; the first block trains from scratch). A
combination such as ``har+lstm`` is the equal-weight average of its members' paths, origin by
origin, so it sees no more than they do.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from volforecast.core.calendar import sessions
from volforecast.core.features import DailyData, market_log_rv
from volforecast.core.parallel import one_blas_thread
from volforecast.errors import VolforecastError
from volforecast.models.base import MAX_HORIZON, VolatilityModel
from volforecast.models.catalog import build_model, combination_members
from volforecast.models.ensemble import equal_weight

log = logging.getLogger(__name__)

POOLED_MODELS = frozenset({"lstm"})
OUTPUT_COLUMNS = (
    "ticker",
    "model",
    "origin_date",
    "step",
    "forecast_date",
    "predicted_volatility",
)


@dataclass(frozen=True)
class BacktestConfig:
    """What to backtest and how."""

    train_end: dt.date
    test_end: dt.date
    models: tuple[str, ...] = ("garch", "har", "ewma")
    refit_every: int = 21
    horizon: int = MAX_HORIZON
    lstm_refit_epochs: int = 5
    """Epochs of each warm-started LSTM refit after the first (full) training."""
    lstm_settings: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.test_end <= self.train_end:
            msg = "the test period must end after the training period"
            raise ValueError(msg)
        if self.refit_every < 1:
            msg = "refit_every must be at least 1 trading day"
            raise ValueError(msg)
        if not 1 <= self.horizon <= MAX_HORIZON:
            msg = f"horizon must be between 1 and {MAX_HORIZON}"
            raise ValueError(msg)
        for name in self.models:
            if not combination_members(name):  # an unknown name fails here, before any work
                build_model(name)

    @property
    def fitted_models(self) -> tuple[str, ...]:
        """The models that are fitted: those asked for and the members of combinations."""
        names: list[str] = []
        for name in self.models:
            for member in combination_members(name) or (name,):
                if member not in names:
                    names.append(member)
        return tuple(names)


@dataclass
class TickerForecasts:
    """All forecasts of one ticker: ``sigma2[model]`` has one row per origin."""

    ticker: str
    origin_positions: np.ndarray
    """Positions of the origins in the ticker's :class:`DailyData`."""
    origin_dates: pd.DatetimeIndex
    sigma2: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    not_converged: dict[str, int] = field(default_factory=dict)


@dataclass
class BacktestResult:
    """Forecasts per ticker, and what could not be done."""

    config: BacktestConfig
    tickers: dict[str, TickerForecasts]

    def to_frame(self) -> pd.DataFrame:
        """One row per (ticker, model, origin_date, step): the backtest's output file."""
        frames = []
        all_sessions = sessions()
        for item in self.tickers.values():
            if not len(item.origin_dates):
                continue
            start = all_sessions.searchsorted(item.origin_dates, side="right")
            steps = np.arange(1, self.config.horizon + 1)
            forecast_dates = np.asarray(all_sessions.to_numpy())[start[:, None] + steps - 1]
            for model, sigma2 in item.sigma2.items():
                n = len(item.origin_dates)
                frames.append(
                    pd.DataFrame(
                        {
                            "ticker": item.ticker,
                            "model": model.upper(),
                            "origin_date": np.repeat(item.origin_dates.date, len(steps)),
                            "step": np.tile(steps, n),
                            "forecast_date": pd.DatetimeIndex(forecast_dates.reshape(-1)).date,
                            "predicted_volatility": np.sqrt(sigma2.reshape(-1)),
                        }
                    )
                )
        if not frames:
            return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
        return pd.concat(frames, ignore_index=True).loc[:, list(OUTPUT_COLUMNS)]

    @property
    def failures(self) -> list[str]:
        """Every fit that could not be made, as ``ticker/model: reason``."""
        return [f for item in self.tickers.values() for f in item.failures]


def blocks(config: BacktestConfig) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``(first, last)`` session of each refit block of the test period."""
    all_sessions = sessions()
    test = all_sessions[
        (all_sessions > pd.Timestamp(config.train_end))
        & (all_sessions <= pd.Timestamp(config.test_end))
    ]
    if len(test) == 0:
        msg = f"no trading day between {config.train_end} and {config.test_end}"
        raise ValueError(msg)
    return [
        (test[i], test[min(i + config.refit_every, len(test)) - 1])
        for i in range(0, len(test), config.refit_every)
    ]


def _origins(data: DailyData, config: BacktestConfig) -> np.ndarray:
    dates = data.dates
    inside = (dates > pd.Timestamp(config.train_end)) & (dates <= pd.Timestamp(config.test_end))
    return np.flatnonzero(inside)


def backtest_ticker(data: DailyData, config: BacktestConfig) -> TickerForecasts:
    """Every per-ticker (not pooled) model of ``config`` over one ticker's test period."""
    positions = _origins(data, config)
    result = TickerForecasts(data.ticker, positions, data.dates[positions])
    schedule = blocks(config)
    for name in config.fitted_models:
        if name in POOLED_MODELS:
            continue
        paths = np.full((len(positions), config.horizon), np.nan)
        # One instance per ticker and model, refitted block after block: a GARCH refit then
        # starts from its previous parameters when the default start fails.
        model: VolatilityModel = build_model(name)
        for first, last in schedule:
            in_block = (data.dates[positions] >= first) & (data.dates[positions] <= last)
            if not in_block.any():
                continue
            history = data.until(first - pd.Timedelta(days=1))
            try:
                model.fit(history)
            except VolforecastError as exc:
                result.failures.append(f"{data.ticker}/{name} at {first.date()}: {exc}")
                continue
            if not model.fit_report.converged:
                result.not_converged[name] = result.not_converged.get(name, 0) + 1
            block_origins = positions[in_block]
            paths[in_block] = model.forecast_paths(
                data.head(int(block_origins.max()) + 1), block_origins, config.horizon
            )
        result.sigma2[name] = paths
    return result


def _backtest_pooled(
    datasets: Sequence[DailyData], config: BacktestConfig, results: dict[str, TickerForecasts],
    progress: Callable[[str], None] | None,
) -> None:  # fmt: skip
    from volforecast.models.lstm import LstmModel  # noqa: PLC0415  (torch only when asked)

    for name in sorted(set(config.fitted_models) & POOLED_MODELS):
        for item in results.values():
            item.sigma2[name] = np.full((len(item.origin_positions), config.horizon), np.nan)
        network = None
        for number, (first, last) in enumerate(blocks(config)):
            histories = [d.until(first - pd.Timedelta(days=1)) for d in datasets]
            usable = [h for h in histories if len(h) >= LstmModel.min_obs]
            for h in histories:
                if len(h) < LstmModel.min_obs:
                    results[h.ticker].failures.append(
                        f"{h.ticker}/{name} at {first.date()}: fewer than "
                        f"{LstmModel.min_obs} observations"
                    )
            if not usable:
                continue
            settings = dict(config.lstm_settings)
            if network is not None:
                settings["max_epochs"] = config.lstm_refit_epochs
            models, training = LstmModel.fit_many(usable, warm_start=network, **settings)
            network = training.network
            for data in datasets:
                item = results[data.ticker]
                model = models.get(data.ticker)
                dates = item.origin_dates
                in_block = (dates >= first) & (dates <= last)
                if model is None or not in_block.any():
                    continue
                block_origins = item.origin_positions[in_block]
                item.sigma2[name][in_block] = model.forecast_paths(
                    data.head(int(block_origins.max()) + 1), block_origins, config.horizon
                )
            if progress is not None:
                progress(f"{name} block {number + 1}")


def _combine(item: TickerForecasts, config: BacktestConfig) -> None:
    """Add the combinations of ``config`` and keep only the models it asks for."""
    for name in config.models:
        members = combination_members(name)
        if members:
            item.sigma2[name] = equal_weight([item.sigma2[m] for m in members])
    item.sigma2 = {name: item.sigma2[name] for name in config.models}


def walk_forward(
    datasets: Iterable[DailyData],
    config: BacktestConfig,
    *,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Backtest every model of ``config`` on every ticker.

    Parameters
    ----------
    datasets : iterable of DailyData
        One per ticker, each running at least through the test period's origins (the data
        after ``test_end`` is used only as realized targets, never by a forecast). Those
        that come without the market series get the one of all of them
        (:func:`~volforecast.core.features.market_log_rv`).
    config : BacktestConfig
        Period, models and refit frequency.
    workers : int, default 1
        Processes for the per-ticker models (``0``: one per CPU).
    progress : callable, optional
        Told the name of each ticker or pooled block when it is done.
    """
    data = list(datasets)
    if any(d.market_log_rv is None for d in data):
        market = market_log_rv(data)
        data = [d if d.market_log_rv is not None else d.with_market(market) for d in data]
    results: dict[str, TickerForecasts] = {}
    per_ticker = [m for m in config.fitted_models if m not in POOLED_MODELS]
    n_workers = os.cpu_count() or 1 if workers == 0 else workers
    if per_ticker and n_workers > 1 and len(data) > 1:
        with ProcessPoolExecutor(max_workers=n_workers, initializer=one_blas_thread) as pool:
            for item in pool.map(backtest_ticker, data, [config] * len(data)):
                results[item.ticker] = item
                if progress is not None:
                    progress(item.ticker)
    else:
        for d in data:
            results[d.ticker] = backtest_ticker(d, config)
            if progress is not None:
                progress(d.ticker)
    _backtest_pooled(data, config, results, progress)
    for item in results.values():
        _combine(item, config)
        for failure in item.failures:
            log.warning("backtest: %s", failure)
    return BacktestResult(config, results)
