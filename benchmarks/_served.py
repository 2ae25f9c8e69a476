"""The accuracy benchmark's ``served`` row: the champion rule walk-forward over the candidates.

The backtest's paths of every candidate family are judged at each refit by
:func:`~volforecast.evaluation.served.served_walk_forward`, with the settings training and
the service read (``ChampionSettings().max_pvalue``, the promotion's horizon and proxy), and
the chosen family's paths become the ``served`` model of each ticker. The fingerprint of each
candidate's catalog options is printed, so that the benchmarked forecast and the served one
can be seen to be built alike.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import save_npz
from volforecast.core.features import DailyData
from volforecast.evaluation.backtest import BacktestConfig, TickerForecasts
from volforecast.evaluation.served import ServedRule, served_walk_forward
from volforecast.evaluation.served_window import WindowPaths, first_window_paths
from volforecast.jobs.market import market_from_prices, with_market
from volforecast.models.catalog import CANDIDATES, catalog_options
from volforecast.settings import ChampionSettings, PromotionSettings, QualitySettings

SERVED = "served"
FIRST_WINDOW_FILE = "first-window.npz"
"""In ``--cache``: the candidates' forecasts of each ticker's first test window."""
POSITIONS = "origin_positions"


def fingerprint(name: str) -> str:
    """A short sha256 of ``catalog_options(name)`` as sorted JSON."""
    text = json.dumps(catalog_options(name), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def missing_candidates(models: list[str]) -> list[str]:
    """The candidate families the run must also backtest for the ``served`` row."""
    return [name for name in CANDIDATES if name not in models]


def first_windows(
    prices: pd.DataFrame,
    datasets: Mapping[str, DailyData],
    config: BacktestConfig,
    *,
    cache: Path | None = None,
    key: str = "",
) -> dict[str, WindowPaths]:
    """Each candidate's forecasts of every ticker's test window through ``train_end``.

    The market series is the one the backtest attaches (every ticker of ``prices``). With a
    ``cache`` folder they are kept in ``first-window.npz`` and read back by a run with the same
    ``key`` (tickers and periods) and the same catalog options; otherwise made again.
    """
    file = None if cache is None else cache / FIRST_WINDOW_FILE
    key = key + "|" + ",".join(f"{name}:{fingerprint(name)}" for name in CANDIDATES)
    if file is not None and file.exists():
        with np.load(file) as stored:
            if str(stored["key"]) == key:
                print(f"{SERVED}: the first window's forecasts from {file}")
                return _unpacked(stored, datasets)
    started = time.perf_counter()
    market = market_from_prices(prices, QualitySettings())["log_rv"]
    windows = first_window_paths(
        with_market(dict(datasets), market), CANDIDATES, config.train_end,
        steps=config.horizon, lstm_settings=config.lstm_settings,
    )  # fmt: skip
    print(
        f"{SERVED}: the candidates fitted as training fits them on the days through "
        f"{config.train_end}, to forecast the test window the first refit judges: "
        f"{time.perf_counter() - started:.0f} s"
    )
    if file is not None:
        arrays = {f"{t}|{POSITIONS}": w.origin_positions for t, w in windows.items()}
        arrays |= {f"{t}|{n}": p for t, w in windows.items() for n, p in w.sigma2.items()}
        save_npz(file, key=np.array(key), **arrays)
    return windows


def _unpacked(stored: Any, datasets: Mapping[str, DailyData]) -> dict[str, WindowPaths]:
    return {
        ticker: WindowPaths(
            stored[f"{ticker}|{POSITIONS}"],
            {name: stored[f"{ticker}|{name}"] for name in CANDIDATES},
        )
        for ticker in datasets
    }


def add_served(
    forecasts: Mapping[str, TickerForecasts],
    datasets: Mapping[str, DailyData],
    refits: list[pd.Timestamp],
    before: Mapping[str, WindowPaths],
) -> Counter[str]:
    """Add the ``served`` paths to every ticker; print the rule, fingerprints and wins.

    ``before`` holds each ticker's forecasts of its test window through the training period
    (:func:`first_windows`): the rule judges them with the backtest's own, so that its first
    choice is made on a full window, as the first training's is.

    Returns how many tickers each family is champion of after the last refit.
    """
    promotion = PromotionSettings()
    champion = ChampionSettings()
    rule = ServedRule(
        champion.max_pvalue, promotion.horizon, promotion.proxy, preferred=champion.preferred
    )
    print(
        f"\n{SERVED}: the champion rule at each of {len(refits)} refits among "
        f"{', '.join(CANDIDATES)} (first sitting champion {rule.preferred}; "
        f"max p-value {rule.max_pvalue}, QLIKE of the "
        f"{rule.horizon}-day sum on the {rule.proxy} proxy, each ticker's test window up to "
        f"the refit; {rule.default} where no candidate forecasts it). Each family is fitted "
        "as the backtest fits every model (at each refit, on every day before it); the "
        "service's versions are fitted weekly on the first 90 % of each ticker's days and pass "
        "their own promotion gate first, which this row does not model"
    )
    for name in CANDIDATES:
        print(f"  catalog_options({name}) sha256 {fingerprint(name)}")
    wins: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    switches = 0
    for ticker, item in forecasts.items():
        if not len(item.origin_positions):
            continue
        window = before.get(ticker)
        n_before = 0 if window is None else len(window.origin_positions)
        positions, paths = item.origin_positions, {n: item.sigma2[n] for n in CANDIDATES}
        if window is not None:
            positions = np.concatenate([window.origin_positions, positions])
            paths = {n: np.concatenate([window.sigma2[n], p]) for n, p in paths.items()}
        served = served_walk_forward(datasets[ticker], positions, paths, refits, rule)
        item.sigma2[SERVED] = served.sigma2[n_before:]
        switches += sum(c.changed and c.incumbent is not None for c in served.choices)
        wins[served.champion or "none"] += 1
        origins.update(served.origins)
    total = max(sum(origins.values()), 1)
    print(
        "  origins served: "
        + ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in origins.most_common())
    )
    print(
        "  champions after the last refit: "
        + ", ".join(f"{name} {wins[name]}" for name in (*CANDIDATES, "none") if wins[name])
        + f"; {switches} changes of champion after the first"
    )
    return wins
