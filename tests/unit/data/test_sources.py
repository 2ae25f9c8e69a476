"""Price sources: column mapping, the bundled sample, files and the optional Yahoo source."""

from __future__ import annotations

import datetime as dt
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.factories import clean_prices
from volforecast.data.sources import (
    RAW_COLUMNS,
    SAMPLE_TICKERS,
    load_file,
    load_sample,
    load_yfinance,
    normalize,
)
from volforecast.errors import DataSourceError


def test_the_sample_holds_two_real_index_histories() -> None:
    batch = load_sample()
    frame = batch.frame
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert tuple(sorted(frame["ticker"].unique())) == tuple(sorted(SAMPLE_TICKERS))
    gspc = frame[frame["ticker"] == "^GSPC"]
    assert len(gspc) > 5000
    assert gspc["date"].min() == pd.Timestamp("1999-01-04")
    # The S&P 500 ended 2006 at 1,418.30.
    close = gspc.loc[gspc["date"] == pd.Timestamp("2006-12-29"), "close"].item()
    assert close == pytest.approx(1418.30, abs=0.01)


def test_yahoo_and_shared_layouts_map_onto_the_raw_layout() -> None:
    yahoo = pd.DataFrame(
        {
            "Date": ["2020-01-02", "2020-01-03"],
            "Open": [1.0, 2.0],
            "High": [1.5, 2.5],
            "Low": [0.5, 1.5],
            "Close": [1.2, 2.2],
            "Adj Close": [1.1, 2.1],
            "Volume": [10, 20],
            "Stock Splits": [0.0, 2.0],
        }
    )
    out = normalize(yahoo, source="t", ticker="aapl ")
    assert list(out.columns) == list(RAW_COLUMNS)
    assert out["ticker"].tolist() == ["AAPL", "AAPL"]
    assert out["adj_close"].tolist() == [1.1, 2.1]
    assert out["split_coefficient"].tolist() == [1.0, 2.0], "Yahoo's 0 means no split"
    shared = pd.DataFrame(
        {
            "ticker": ["A"],
            "date": [pd.Timestamp("2020-01-02")],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "adjusted_close": [0.5],
            "volume": [1],
            "dividend_amount": [0.0],
            "split_coefficient": [1.0],
        }
    )
    assert normalize(shared, source="t")["adj_close"].item() == 0.5


def test_without_an_adjusted_close_the_close_is_used() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["X"],
            "date": ["2020-01-02"],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [3.0],
        }
    )
    out = normalize(frame, source="t")
    assert out["adj_close"].item() == 3.0
    assert np.isnan(out["volume"].item())


def test_text_in_number_columns_becomes_missing_for_the_gate_to_reject() -> None:
    frame = clean_prices("AAA", 3).astype({"close": object})
    frame.loc[1, "close"] = "n/a"
    out = normalize(frame, source="t")
    assert np.isnan(out.loc[1, "close"])


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    pd.DataFrame({"date": ["2020-01-02"], "close": [1.0]}).to_csv(path, index=False)
    with pytest.raises(DataSourceError, match="no column for open, high, low, ticker"):
        load_file(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz"])
def test_files_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = clean_prices("AAA", 20).rename(columns={"adj_close": "adjusted_close"})
    path = tmp_path / f"prices{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    batch = load_file(path)
    assert batch.source == f"file:prices{suffix}"
    assert len(batch.frame) == 20
    np.testing.assert_allclose(batch.frame["adj_close"], frame["adjusted_close"], rtol=1e-12)


def test_one_ticker_files_take_the_ticker_from_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "aapl.csv"
    clean_prices("X", 5).drop(columns=["ticker"]).to_csv(path, index=False)
    assert set(load_file(path, ticker="AAPL").frame["ticker"]) == {"AAPL"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("prices.xlsx", b"PK", "unknown file type"),
        ("broken.parquet", b"not parquet", "cannot read"),
    ],
)
def test_unreadable_files_fail_in_one_sentence(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataSourceError, match=message):
        load_file(path)


def test_yfinance_missing_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    with pytest.raises(DataSourceError, match=r"pip install 'volforecast\[yfinance\]'"):
        load_yfinance(["AAPL"], dt.date(2020, 1, 1))


def test_yfinance_without_network_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stands in for the installed package on a machine without internet: every call fails
    # the way requests does when no connection can be made.
    class Unreachable:
        def __init__(self, ticker: str) -> None:
            self.ticker = ticker

        def history(self, **_: object) -> pd.DataFrame:
            message = "Failed to establish a new connection: [Errno -3] name resolution"
            raise ConnectionError(message)

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(Ticker=Unreachable))
    with pytest.raises(DataSourceError, match="is the network up") as caught:
        load_yfinance(["AAPL", "MSFT"], dt.date(2020, 1, 1))
    assert "\n" not in str(caught.value)
    assert "AAPL: Failed to establish" in str(caught.value)
