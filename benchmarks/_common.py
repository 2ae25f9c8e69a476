"""What the benchmarks share: the shared data file and a seeded choice of tickers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHARED_FILE = Path(__file__).resolve().parents[2] / "shared/data/sp500_daily_1999_2018.parquet"
# The pooled LSTM is trained with LstmConfig's defaults, as `volforecast train` and
# `volforecast backtest` train it; a benchmark that varies a setting says which and why.


def draw_tickers(prices: pd.DataFrame, count: int, seed: int, history_before: str) -> list[str]:
    """``count`` tickers drawn with ``seed`` among those with prices before ``history_before``.

    The history rule keeps tickers that every model can be fitted on at the first origin.
    """
    first = prices.groupby("ticker")["date"].min()
    eligible = sorted(first[first < pd.Timestamp(history_before)].index)
    if count >= len(eligible):
        return eligible
    return sorted(np.random.default_rng(seed).choice(eligible, count, replace=False).tolist())
