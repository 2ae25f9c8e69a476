"""Price sources: the bundled sample, CSV/Parquet files, and Yahoo Finance (optional).

Every source returns one long frame in the *raw price layout*: ``ticker``, ``date``,
``open``, ``high``, ``low``, ``close``, ``adj_close``, ``volume``, ``split_coefficient``,
``source``. Values are coerced (text that is not a number becomes NaN) but not judged:
judging is the quality gate's job, so that a bad value is reported instead of crashing a load.

File column names are matched case-insensitively, ignoring spaces, dashes and underscores:

================== =============================================================
column             accepted names
================== =============================================================
ticker             ticker, symbol (or ``--ticker`` for a one-ticker file)
date               date, datetime, timestamp
open/high/low      open, high, low
close              close (as traded)
adj_close          adj_close, adjusted_close, adj close, adjclose (else = close)
volume             volume (optional)
split_coefficient  split_coefficient, split_factor, stock splits (optional)
================== =============================================================

Other columns (``dividend_amount`` for example) are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.errors import DataSourceError

RAW_COLUMNS = (
    "ticker",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "split_coefficient",
    "source",
)
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
SAMPLE_TICKERS = ("^GSPC", "^IXIC")

_ALIASES = {
    "ticker": "ticker",
    "symbol": "ticker",
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
    "splitcoefficient": "split_coefficient",
    "splitfactor": "split_coefficient",
    "stocksplits": "split_coefficient",
}
_REQUIRED = ("date", "open", "high", "low", "close")


@dataclass(frozen=True)
class PriceBatch:
    """What a source delivered: a frame in the raw layout, and the tickers it could not get."""

    frame: pd.DataFrame
    source: str
    unavailable: dict[str, str] = field(default_factory=dict)
    """Ticker to the reason the source could not deliver it."""


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def normalize(frame: pd.DataFrame, *, source: str, ticker: str | None = None) -> pd.DataFrame:
    """Map a frame of any accepted layout onto the raw price layout.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prices with columns named as in the module's table; a date index is used when there
        is no date column.
    source : str
        What to record in ``stock_prices.source``.
    ticker : str, optional
        The ticker of every row, for one-ticker files without a ticker column.

    Raises
    ------
    DataSourceError
        When a required column is missing.
    """
    if not any(_ALIASES.get(_key(c)) == "date" for c in frame.columns):
        frame = frame.reset_index()
    renamed: dict[str, str] = {}
    for column in frame.columns:
        target = _ALIASES.get(_key(column))
        if target is not None and target not in renamed.values():
            renamed[column] = target
    out = frame.loc[:, list(renamed)].rename(columns=renamed)
    if ticker is not None:
        out["ticker"] = ticker
    missing = [c for c in (*_REQUIRED, "ticker") if c not in out.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        msg = (
            f"{source}: no column for {', '.join(missing)} (found: {found}); see "
            "`volforecast ingest --help` for the accepted names"
            + ("; give --ticker for a one-ticker file" if "ticker" in missing else "")
        )
        raise DataSourceError(msg)
    if "adj_close" not in out.columns:
        out["adj_close"] = out["close"]
    if "volume" not in out.columns:
        out["volume"] = np.nan
    if "split_coefficient" not in out.columns:
        out["split_coefficient"] = 1.0

    out["ticker"] = out["ticker"].astype("string").str.strip().str.upper().fillna("")
    dates = pd.to_datetime(out["date"], errors="coerce", utc=False)
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)
    out["date"] = dates.dt.normalize().astype("datetime64[ns]")
    for column in (*PRICE_COLUMNS, "volume", "split_coefficient"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    # Yahoo writes 0 for "no split"; a ratio of 1 means the same and keeps the maths simple.
    out["split_coefficient"] = out["split_coefficient"].where(out["split_coefficient"] > 0, 1.0)
    out["source"] = source
    return out.loc[:, list(RAW_COLUMNS)].reset_index(drop=True)


def load_sample() -> PriceBatch:
    """The bundled sample: S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``), 1999-2018.

    Real daily OHLC that ships with the ``arch`` package, so the demo runs offline.
    """
    from arch.data import nasdaq, sp500  # noqa: PLC0415  (only this source needs them)

    frames = [
        normalize(module.load(), source="arch-sample", ticker=ticker)
        for ticker, module in zip(SAMPLE_TICKERS, (sp500, nasdaq), strict=True)
    ]
    return PriceBatch(pd.concat(frames, ignore_index=True), source="arch-sample")


def load_file(path: Path, *, ticker: str | None = None) -> PriceBatch:
    """Prices from a CSV or Parquet file (by suffix; ``.csv.gz`` works too).

    Raises
    ------
    DataSourceError
        When the file is missing, unreadable or has no usable columns.
    """
    if not path.is_file():
        msg = f"no such file: {path}"
        raise DataSourceError(msg)
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            frame = pd.read_parquet(path)
        elif ".csv" in suffixes or ".txt" in suffixes:
            frame = pd.read_csv(path)
        else:
            msg = f"{path}: unknown file type; use .csv or .parquet"
            raise DataSourceError(msg)
    except DataSourceError:
        raise
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise DataSourceError(msg) from exc
    source = f"file:{path.name}"[:64]
    return PriceBatch(normalize(frame, source=source, ticker=ticker), source=source)


def load_yfinance(tickers: Sequence[str], start: dt.date, end: dt.date | None = None) -> PriceBatch:
    """Daily prices from Yahoo Finance through the optional ``yfinance`` package.

    Raises
    ------
    DataSourceError
        In one sentence, when the package is missing, the network is down or Yahoo returns
        nothing for every ticker.
    """
    try:
        import yfinance as yf  # noqa: PLC0415  (optional extra)
    except ImportError as exc:
        msg = "the yfinance source needs the optional package: pip install 'volforecast[yfinance]'"
        raise DataSourceError(msg) from exc
    frames = []
    unavailable: dict[str, str] = {}
    for ticker in tickers:
        try:
            history = yf.Ticker(ticker).history(
                start=start.isoformat(),
                end=end.isoformat() if end else None,
                auto_adjust=False,
                actions=True,
                raise_errors=True,
            )
        except Exception as exc:  # noqa: BLE001  (yfinance raises anything from requests to KeyError)
            text = str(exc).strip()
            unavailable[ticker] = text.splitlines()[0] if text else repr(exc)
            continue
        if history.empty:
            unavailable[ticker] = "no prices returned"
            continue
        frames.append(normalize(history, source="yfinance", ticker=ticker))
    if not frames:
        reasons = "; ".join(f"{t}: {why}" for t, why in unavailable.items())
        msg = f"Yahoo Finance returned no prices (is the network up?): {reasons}"
        raise DataSourceError(msg)
    return PriceBatch(pd.concat(frames, ignore_index=True), "yfinance", unavailable)
