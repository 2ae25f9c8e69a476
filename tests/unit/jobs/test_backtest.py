"""What the backtest job works out before it runs: the steps its progress bar counts."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from volforecast.evaluation.backtest import BacktestConfig, blocks
from volforecast.jobs.backtest import progress_total


def test_the_progress_total_counts_each_ticker_and_each_block_of_a_pooled_model() -> None:
    # Given prices of three tickers, two of them asked for, and the LSTM inside a combination
    prices = pd.DataFrame({"ticker": ["A", "A", "B", "C"]})
    config = BacktestConfig(dt.date(2018, 10, 31), dt.date(2018, 12, 31), ("garch", "har+lstm"),
                            refit_every=10)  # fmt: skip
    n_blocks = len(blocks(config))
    assert n_blocks == 4, "40 NYSE sessions in November and December 2018, refit every 10"
    # Then each asked-for ticker is a step, and each block of the pooled member one more
    assert progress_total(prices, config, ["A", "B", "NOPE"]) == 2 + n_blocks
    assert progress_total(prices, config, None) == 3 + n_blocks
    per_ticker = BacktestConfig(dt.date(2018, 10, 31), dt.date(2018, 12, 31), ("garch",))
    assert progress_total(prices, per_ticker, None) == 3
