"""Walk-forward backtest: forecasts from every trading day of a test period, as if live.

The test period is cut into blocks of ``refit_every`` NYSE sessions. Before a block, each
model is fitted on the data up to the last session before the block (the first block's fit
uses the data through ``train_end``); within the block it forecasts from every origin with
its parameters frozen, filtering each origin's own history. So a forecast made on day ``t``
uses the closes up to ``t`` and nothing later, and the window expands block by block.

Per-ticker models run ticker by ticker (in worker processes when asked). The LSTM is pooled:
at each block one network is trained on every ticker's data up to that block, starting from
the previous block's weights (a warm start; the first block trains from scratch). A
combination such as ``har+lstm`` is by default the equal-weight average of its members' paths,
origin by origin, so it sees no more than they do. With ``combine="learned"`` its weights are
learned per step, pooled over tickers, from the forecasts already realized before each block
(:func:`learned_combination`): still nothing from after an origin.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from volforecast.core.calendar import sessions
from volforecast.core.features import DailyData, market_log_rv
from volforecast.core.parallel import one_blas_thread
from volforecast.errors import ConfigurationError
from volforecast.models.base import MAX_HORIZON
from volforecast.models.catalog import combination_members, is_pooled, member_weights, spec_of
from volforecast.models.ensemble import combination_weights, equal_weight
from volforecast.models.lstm.config import BACKTEST_REFIT
from volforecast.models.panel import FittedPanel, fit_panel

if TYPE_CHECKING:
    from volforecast.models.lstm.training import EpochCallback

log = logging.getLogger(__name__)

COMBINE_MODES = ("equal", "learned")
MIN_LEARNING_ROWS = 1000
"""Realized forecasts per step, pooled over tickers, before learned weights replace equal ones."""
OUTPUT_COLUMNS = ("ticker", "model", "origin_date", "step", "forecast_date", "predicted_volatility")


@dataclass(frozen=True)
class BacktestConfig:
    """What to backtest and how."""

    train_end: dt.date
    test_end: dt.date
    models: tuple[str, ...] = ("garch", "har", "ewma")
    refit_every: int = 21
    horizon: int = MAX_HORIZON
    lstm_refit_epochs: int = BACKTEST_REFIT.max_epochs
    """Epochs of each warm-started LSTM refit after the first (full) training."""
    lstm_settings: dict[str, object] = field(default_factory=dict)
    """Fields of :class:`~volforecast.models.lstm.config.LstmConfig` to override."""
    combine: str = "equal"
    """How a combination ``a+b`` weighs its members: ``equal``, or ``learned`` weights per
    step from the forecasts realized before each block (:func:`learned_combination`)."""

    def __post_init__(self) -> None:
        if self.combine not in COMBINE_MODES:
            msg = f"combine must be one of {', '.join(COMBINE_MODES)}, got {self.combine!r}"
            raise ConfigurationError(msg)
        if self.test_end <= self.train_end:
            msg = "the test period must end after the training period"
            raise ConfigurationError(msg)
        if self.refit_every < 1:
            msg = "refit_every must be at least 1 trading day"
            raise ConfigurationError(msg)
        if not 1 <= self.horizon <= MAX_HORIZON:
            msg = f"horizon must be between 1 and {MAX_HORIZON}"
            raise ConfigurationError(msg)
        for name in self.models:
            if not combination_members(name):  # an unknown name fails here, before any work
                spec_of(name)

    @property
    def fitted_models(self) -> tuple[str, ...]:
        """The models that are fitted: those asked for and the members of combinations."""
        members = (m for name in self.models for m in combination_members(name) or (name,))
        return tuple(dict.fromkeys(members))  # in order, each once

    def in_test(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Which of ``dates`` are in the test period: after ``train_end``, up to ``test_end``."""
        return np.asarray(
            (dates > pd.Timestamp(self.train_end)) & (dates <= pd.Timestamp(self.test_end))
        )


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
        from volforecast.core.schemas import BacktestSchema  # noqa: PLC0415  (imports pandera)

        frames = []
        all_sessions = sessions()
        for item in self.tickers.values():
            if not len(item.origin_dates):
                continue
            start = all_sessions.searchsorted(item.origin_dates, side="right")
            steps = np.arange(1, self.config.horizon + 1)
            forecast_dates = np.asarray(all_sessions.to_numpy())[start[:, None] + steps - 1]
            # Every model of a ticker has the same origins, steps and dates.
            days = pd.DataFrame(
                {
                    "ticker": item.ticker,
                    "origin_date": np.repeat(item.origin_dates.date, len(steps)),
                    "step": np.tile(steps, len(item.origin_dates)),
                    "forecast_date": pd.DatetimeIndex(forecast_dates.reshape(-1)).date,
                }
            )
            frames += [
                days.assign(model=model.upper(), predicted_volatility=np.sqrt(sigma2.reshape(-1)))
                for model, sigma2 in item.sigma2.items()
            ]
        if not frames:
            return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
        return BacktestSchema.validate(pd.concat(frames, ignore_index=True)[list(OUTPUT_COLUMNS)])

    @property
    def failures(self) -> list[str]:
        """Every fit that could not be made, as ``ticker/model: reason``."""
        return [f for item in self.tickers.values() for f in item.failures]


def blocks(config: BacktestConfig) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``(first, last)`` session of each refit block of the test period."""
    all_sessions = sessions()
    test = all_sessions[config.in_test(all_sessions)]
    if len(test) == 0:
        msg = f"no trading day between {config.train_end} and {config.test_end}"
        raise ConfigurationError(msg)
    return [
        (test[i], test[min(i + config.refit_every, len(test)) - 1])
        for i in range(0, len(test), config.refit_every)
    ]


def backtest_ticker(data: DailyData, config: BacktestConfig) -> TickerForecasts:
    """Every per-ticker (not pooled) model of ``config`` over one ticker's test period."""
    positions = np.flatnonzero(config.in_test(data.dates))
    result = TickerForecasts(data.ticker, positions, data.dates[positions])
    schedule = blocks(config)
    for name in config.fitted_models:
        if is_pooled(name):
            continue
        paths = np.full((len(positions), config.horizon), np.nan)
        # One instance per ticker and model, refitted block after block: a GARCH refit then
        # starts from its previous parameters when the default start fails.
        panel: FittedPanel | None = None
        for first, last in schedule:
            in_block = (data.dates[positions] >= first) & (data.dates[positions] <= last)
            if not in_block.any():
                continue
            history = data.until(first - pd.Timedelta(days=1))
            fitted = fit_panel(spec_of(name), [history], warm_start=panel)
            if history.ticker in fitted.failures:
                why = fitted.failures[history.ticker]
                result.failures.append(f"{data.ticker}/{name} at {first.date()}: {why}")
                continue
            model = fitted.for_ticker(history.ticker)
            if not model.fit_report.converged:
                result.not_converged[name] = result.not_converged.get(name, 0) + 1
            block_origins = positions[in_block]
            try:
                paths[in_block] = model.forecast_paths(
                    data.head(int(block_origins.max()) + 1), block_origins, config.horizon
                )
            except ArithmeticError as error:  # an explosive fit: this block only, as a failed fit
                result.failures.append(f"{data.ticker}/{name} at {first.date()}: {error}")
                continue  # and the next block does not start from its parameters
            panel = fitted
        result.sigma2[name] = paths
    return result


def _backtest_pooled(
    datasets: Sequence[DailyData], config: BacktestConfig, results: dict[str, TickerForecasts],
    progress: Callable[[str], None] | None, on_epoch: EpochCallback | None = None,
    pool_with: Sequence[DailyData] = (),
) -> None:  # fmt: skip
    for name in sorted(n for n in config.fitted_models if is_pooled(n)):
        for item in results.values():
            item.sigma2[name] = np.full((len(item.origin_positions), config.horizon), np.nan)
        spec, panel = spec_of(name), None
        minimum = spec.model_kind.min_obs
        schedule = blocks(config)
        # Only the extra tickers trainable from the first block: one that came of age later
        # would change the panel, and a changed panel trains a new network from scratch.
        start = schedule[0][0] - pd.Timedelta(days=1)
        extra = [d for d in pool_with if len(d.until(start)) >= minimum]
        for number, (first, last) in enumerate(schedule):
            histories = [d.until(first - pd.Timedelta(days=1)) for d in datasets]
            others = [d.until(first - pd.Timedelta(days=1)) for d in extra]
            usable = [h for h in histories + others if len(h) >= minimum]
            for h in histories:
                if len(h) < minimum:
                    results[h.ticker].failures.append(
                        f"{h.ticker}/{name} at {first.date()}: fewer than {minimum} observations"
                    )
            if not usable:
                continue
            settings = dict(config.lstm_settings)
            if panel is not None and set(panel.models) == {h.ticker for h in usable}:
                settings["max_epochs"] = config.lstm_refit_epochs  # warm: a few epochs do
            panel = fit_panel(spec, usable, warm_start=panel, on_epoch=on_epoch, **settings)
            for data in datasets:
                item = results[data.ticker]
                model = panel.models.get(data.ticker)
                dates = item.origin_dates
                in_block = (dates >= first) & (dates <= last)
                if model is None or not in_block.any():
                    continue
                block_origins = item.origin_positions[in_block]
                try:
                    item.sigma2[name][in_block] = model.forecast_paths(
                        data.head(int(block_origins.max()) + 1), block_origins, config.horizon
                    )
                except ArithmeticError as error:
                    item.failures.append(f"{data.ticker}/{name} at {first.date()}: {error}")
            if progress is not None:
                progress(f"{name} block {number + 1}")


@dataclass(frozen=True)
class LearnedCombination:
    """Combined paths per ticker and the weights each block used."""

    sigma2: dict[str, np.ndarray]
    weights: np.ndarray
    """Shape ``(blocks, steps, members)``; rows of a block without realized forecasts yet are
    equal weights."""
    block_starts: pd.DatetimeIndex


def learned_combination(
    datasets: Mapping[str, DailyData],
    forecasts: Mapping[str, TickerForecasts],
    members: Sequence[str],
    block_starts: Sequence[pd.Timestamp],
    min_rows: int | None = None,
) -> LearnedCombination:
    r"""Combine member paths with weights learned, block by block, on realized forecasts.

    Parameters
    ----------
    datasets : mapping of str to DailyData
        Each ticker's data; its range-based variance is the proxy the weights are fitted to.
    forecasts : mapping of str to TickerForecasts
        The members' paths per ticker (percent², NaN where a fit failed).
    members : sequence of str
        The models combined.
    block_starts : sequence of pandas.Timestamp
        First session of each block; weights change only there, as the models' fits do.
    min_rows : int, optional
        Realized forecasts a step needs, over all tickers, before its weights are learned;
        until then they are equal. By default :data:`MIN_LEARNING_ROWS`.

    Returns
    -------
    LearnedCombination
        The combined paths, NaN wherever a member's is.

    Notes
    -----
    Before the block starting on day :math:`b`, the weights of step :math:`s` minimise the
    mean QLIKE of :math:`\sum_m w_m h^{(m)}_{i,t,s}` against the range-based variance of day
    :math:`t + s` (:func:`~volforecast.models.ensemble.combination_weights`), over every ticker
    :math:`i` and origin :math:`t` whose target day is before :math:`b`. So a forecast from
    an origin of the block uses only days the origin has seen, as its members do. Pooling over
    tickers gives each weight thousands of observations after the first block or two, where a
    ticker alone would have a few dozen; weights learned per ticker overfit
    (:class:`~volforecast.models.ensemble.EnsembleModel` learns them on a longer validation
    stretch instead).
    """
    needed = MIN_LEARNING_ROWS if min_rows is None else min_rows
    tickers = [t for t, item in forecasts.items() if len(item.origin_positions)]
    steps = forecasts[tickers[0]].sigma2[members[0]].shape[1] if tickers else 0
    starts = pd.DatetimeIndex(list(block_starts))
    weights = np.full((len(starts), steps, len(members)), 1.0 / len(members))
    if not tickers:
        return LearnedCombination({}, weights, starts)
    paths, proxy, target_day, origin_day = [], [], [], []
    offsets = np.arange(1, steps + 1)
    for ticker in tickers:
        item, data = forecasts[ticker], datasets[ticker]
        at = item.origin_positions[:, None] + offsets
        inside = at < len(data)
        where = np.where(inside, at, 0)
        paths.append(np.stack([item.sigma2[m] for m in members]))
        proxy.append(np.where(inside, data.rv_sigma2[where], np.nan))
        days = data.dates.to_numpy()[where]
        target_day.append(np.where(inside, days, np.datetime64("NaT")))
        origin_day.append(item.origin_dates.to_numpy())
    all_paths = np.concatenate(paths, axis=1)
    all_proxy, all_target = np.concatenate(proxy), np.concatenate(target_day)
    usable = np.isfinite(all_paths).all(axis=0) & np.isfinite(all_proxy)
    combined = np.full(all_proxy.shape, np.nan)
    first_days = starts.to_numpy()
    # Each origin's block: the last that starts on or before it (-1 before the first).
    block_of = np.searchsorted(first_days, np.concatenate(origin_day), side="right") - 1
    for k, start in enumerate(first_days):
        known = usable & (all_target < start)  # NaT compares False: beyond the data
        for s in range(steps):
            rows = known[:, s]
            if rows.sum() >= needed:
                weights[k, s] = combination_weights(all_paths[:, rows, s], all_proxy[rows, s])
        in_block = block_of == k
        combined[in_block] = np.einsum("mns,sm->ns", all_paths[:, in_block], weights[k])
    ends = np.cumsum([len(forecasts[t].origin_positions) for t in tickers])
    by_ticker = dict(zip(tickers, np.split(combined, ends[:-1]), strict=True))
    return LearnedCombination(by_ticker, weights, starts)


def add_combinations(
    forecasts: Mapping[str, TickerForecasts],
    datasets: Mapping[str, DailyData],
    config: BacktestConfig,
) -> None:
    """Add the combinations of ``config`` to every ticker, keeping only the models it asks for."""
    starts = [first for first, _ in blocks(config)]
    for name in config.models:
        members = combination_members(name)
        if not members:
            continue
        learned: dict[str, np.ndarray] = {}
        if config.combine == "learned":
            learned = learned_combination(datasets, forecasts, members, starts).sigma2
        for ticker, item in forecasts.items():
            paths = learned.get(ticker)  # a ticker without origins had nothing learned
            if paths is None:
                paths = equal_weight([item.sigma2[m] for m in members], member_weights(name))
            item.sigma2[name] = paths
    for item in forecasts.values():
        item.sigma2 = {name: item.sigma2[name] for name in config.models}


def walk_forward(
    datasets: Iterable[DailyData],
    config: BacktestConfig,
    *,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    on_epoch: EpochCallback | None = None,
    pool_with: Iterable[DailyData] = (),
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
    on_epoch : callable, optional
        Told each epoch of every pooled LSTM training (the first block's runs longest).
    pool_with : iterable of DailyData, optional
        More tickers the pooled models train on, as the service's pooled LSTM trains on every
        stored ticker; they are not forecast. They need the market series already. Only those
        with enough days before the first block are used, in every block.
    """
    data = list(datasets)
    if any(d.market_log_rv is None for d in data):
        market = market_log_rv(data)
        data = [d if d.market_log_rv is not None else d.with_market(market) for d in data]
    results: dict[str, TickerForecasts] = {}
    per_ticker = [m for m in config.fitted_models if not is_pooled(m)]
    n_workers = os.cpu_count() or 1 if workers == 0 else workers
    if per_ticker and n_workers > 1 and len(data) > 1:
        with ProcessPoolExecutor(max_workers=n_workers, initializer=one_blas_thread) as pool:
            for item in pool.map(backtest_ticker, data, [config] * len(data)):
                results[item.ticker] = item
                if progress is not None:
                    progress(item.ticker)
    else:
        # One BLAS thread here too: HAR's many small least-squares fits gain nothing from a
        # second thread, and on a busy 2-core machine OpenBLAS's threads wait on each other
        # (HAR's fit took 1.1-1.4 s with two threads, 0.11 s with one, while others ran).
        with threadpool_limits(1, user_api="blas"):
            for d in data:
                results[d.ticker] = backtest_ticker(d, config)
                if progress is not None:
                    progress(d.ticker)
    _backtest_pooled(data, config, results, progress, on_epoch, list(pool_with))
    add_combinations(results, {d.ticker: d for d in data}, config)
    for item in results.values():
        for failure in item.failures:
            log.warning("backtest: %s", failure)
    return BacktestResult(config, results)
