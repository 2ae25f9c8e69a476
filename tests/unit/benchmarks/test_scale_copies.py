"""The scale benchmark's extra tickers: copies that pass the gate and differ from every other."""

from __future__ import annotations

import sys

import numpy as np

from tests.conftest import REPO
from volforecast.data.quality.gate import run_gate
from volforecast.data.sources import load_sample
from volforecast.settings import QualitySettings

sys.path.insert(0, str(REPO / "benchmarks"))

from scale import prices_of, split_sessions


def test_copies_share_the_sessions_pass_the_gate_and_are_all_different() -> None:
    sample = load_sample().frame  # two real series: ^GSPC and ^IXIC

    prices = prices_of(5, sample)

    tickers = sorted(prices["ticker"].unique())
    assert tickers == ["^GSPC", "^GSPC.S1", "^GSPC.S2", "^IXIC", "^IXIC.S1"]
    by_ticker = {t: rows.reset_index(drop=True) for t, rows in prices.groupby("ticker")}
    for copy in ("^GSPC.S1", "^GSPC.S2"):
        assert by_ticker[copy]["date"].equals(by_ticker["^GSPC"]["date"])
    returns = {t: np.diff(np.log(r["adj_close"].to_numpy())) for t, r in by_ticker.items()}
    for i, a in enumerate(tickers):
        for b in tickers[i + 1 :]:
            assert not np.allclose(returns[a], returns[b][: len(returns[a])]), (a, b)
    gate = run_gate(prices, QualitySettings())
    assert len(gate.accepted) == len(prices), gate.rejected["check"].value_counts()


def test_the_daily_sessions_come_after_the_training_history() -> None:
    prices = prices_of(3, load_sample().frame)

    history, daily = split_sessions(prices, daily=20)

    assert len(history) + len(daily) == len(prices)
    assert history["date"].max() < daily["date"].min()
    assert daily["date"].nunique() == 20
    assert set(daily["ticker"]) == set(history["ticker"]) == set(prices["ticker"])
