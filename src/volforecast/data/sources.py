"""Price sources: the bundled sample, CSV/Parquet files, and Yahoo Finance (optional).

Every source returns one long frame in the *raw price layout*: ``ticker``, ``date``,
``open``, ``high``, ``low``, ``close``, ``adj_close``, ``volume``, ``split_coefficient``,
``source``. Values are read but not judged: judging is the quality gate's job, so that a bad
value is reported instead of crashing a load. What only the source can tell apart goes beside
the frame (:attr:`PriceBatch.unreadable`): a price written as ``nan`` or ``inf`` rather than
left empty, text that is no number, a date that is not in the column's format or that no
timestamp can hold. The gate rejects those rows first, each with its own check.

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

Dates are never guessed row by row. A column of dates (Parquet) is taken as it is; text is read
in one format for the whole column: the one given (``--date-format``, a ``strptime`` format),
else ISO 8601 (``2018-01-02``) when it reads the column, else the one known format that reads
the most of it. When two formats read it equally well and disagree (``02/01/2018``: 2 January
or 1 February?), the file is refused with a sentence asking for ``--date-format``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from volforecast.errors import DataSourceError

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
RAW_COLUMNS = ("ticker", "date", *PRICE_COLUMNS, "volume", "split_coefficient", "source")
SAMPLE_TICKERS = ("^GSPC", "^IXIC")

_ALIASES = {
    **{name: name for name in ("ticker", "date", "open", "high", "low", "close", "volume")},
    "symbol": "ticker",
    "datetime": "date",
    "timestamp": "date",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "splitcoefficient": "split_coefficient",
    "splitfactor": "split_coefficient",
    "stocksplits": "split_coefficient",
}
_REQUIRED = ("date", "open", "high", "low", "close")


UnreadableCheck = Literal["non_finite_value", "not_a_number", "bad_date", "date_out_of_range"]
"""Checks only a source can make: what was written, before it became a float or a timestamp."""

# Written in a number column, these mean "no value": the row is missing that value.
_MISSING_TEXT = frozenset({"", "na", "n/a", "null", "none", "<na>", "#n/a", "-"})
_NON_FINITE_TEXT = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)

# Tried on a text column of dates, ISO 8601 first; a column is read in one of them.
DATE_FORMATS = (
    "ISO8601", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%Y/%m/%d",
    "%d/%m/%y", "%m/%d/%y", "%Y%m%d", "%d %b %Y", "%b %d, %Y", "%d-%b-%Y",
)  # fmt: skip
# A time of day and then an offset (2018-03-12 00:00:00-04:00, ...T16:00Z): the offset goes.
_OFFSET = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}:?\d{2})$")
# What a datetime64[ns] column can hold; pandas reads text to microseconds, which holds more.
_FIRST_DAY = pd.Timestamp("1678-01-01")
_LAST_DAY = pd.Timestamp("2262-04-10")


def _no_unreadable() -> pd.DataFrame:
    return pd.DataFrame({"check": pd.Series(dtype=str), "detail": pd.Series(dtype=str)})


@dataclass(frozen=True)
class PriceBatch:
    """What a source delivered: a frame in the raw layout, and the tickers it could not get."""

    frame: pd.DataFrame
    source: str
    unavailable: dict[str, str] = field(default_factory=dict)
    """Ticker to the reason the source could not deliver it."""
    unreadable: pd.DataFrame = field(default_factory=_no_unreadable)
    """Rows of ``frame`` (by index) the source could not read: ``check`` names why
    (:data:`UnreadableCheck`), ``detail`` what was written."""


def _key(name: object) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def _numbers(column: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """float64 values, and masks of values written as non-finite and of text that is no number.

    An empty cell (NaN in a float column, null in Parquet) is missing, not unreadable; ``nan``
    written out (text, or a NaN float beside Parquet's nulls) is non-finite, like ``inf``.
    """
    if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        text = column.astype("string").str.strip()
        missing = text.isna() | text.str.lower().isin(_MISSING_TEXT)
        values = pd.to_numeric(text.mask(missing), errors="coerce").astype("float64")
        non_finite = text.str.fullmatch(_NON_FINITE_TEXT).fillna(False).astype(bool)
        garbage = ~missing & values.isna() & ~non_finite
        return values, non_finite | (~missing & values.abs().eq(np.inf)), garbage
    missing = column.isna()  # a masked or Arrow dtype keeps NaN apart from null
    values = pd.Series(
        column.to_numpy(dtype="float64", na_value=np.nan), index=column.index, dtype="float64"
    )
    return values, ~missing & ~np.isfinite(values), pd.Series(False, index=column.index)


def _parse_dates(text: pd.Series, date_format: str) -> pd.Series:
    return pd.to_datetime(text, format=date_format, errors="coerce")


def _date_format(text: pd.Series, source: str) -> str:
    """The one format that reads a column of date text, or why there is none."""
    values = pd.Series(text.dropna().unique())
    iso = _parse_dates(values, "ISO8601")
    if iso.notna().all():
        return "ISO8601"
    parsed = {f: iso if f == "ISO8601" else _parse_dates(values, f) for f in DATE_FORMATS}
    counts = {f: int(p.notna().sum()) for f, p in parsed.items()}
    best = max(counts.values())
    if best == 0:
        msg = (
            f"{source}: no date is in a format volforecast knows (e.g. {values.iloc[0]!r}); "
            "give --date-format with a strptime format, e.g. --date-format '%d/%m/%Y'"
        )
        raise DataSourceError(msg)
    tied = [f for f, n in counts.items() if n == best]
    for other in tied[1:]:
        a, b = parsed[tied[0]], parsed[other]
        differ = a.notna() & b.notna() & (a != b)
        if differ.any():
            example = values[differ].iloc[0]
            msg = (
                f"{source}: the dates are ambiguous: {example!r} is "
                f"{a[differ].iloc[0]:%Y-%m-%d} as {tied[0]} and {b[differ].iloc[0]:%Y-%m-%d} "
                f"as {other}; give --date-format, e.g. --date-format '{tied[0]}'"
            )
            raise DataSourceError(msg)
    return tied[0]


def _without_offsets(text: pd.Series) -> pd.Series:
    """Dates with the offset after a time of day dropped; worked out once per distinct value."""
    distinct = pd.Series(text.dropna().unique(), dtype="string")
    cleaned = distinct.str.replace(_OFFSET, r"\1", regex=True)
    changed = distinct != cleaned
    if not changed.any():
        return text
    return text.replace(dict(zip(distinct[changed], cleaned[changed], strict=True)))


def _dates(
    column: pd.Series, source: str, date_format: str | None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """datetime64[ns] midnights, and masks of unreadable and of out-of-range dates."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if isinstance(column.dtype, pd.ArrowDtype):  # Parquet's timestamps, read with pyarrow
            if column.dt.tz is not None:
                column = column.dt.tz_localize(None)  # the exchange's own day, not UTC's
            column = column.astype(column.dtype.numpy_dtype)  # type: ignore[union-attr]
        dates = pd.to_datetime(column)
        bad = pd.Series(False, index=column.index)
    else:
        # A time zone offset would make pandas refuse a column that crosses a change of
        # summer time; the day is the exchange's own, so the wall time is what is read.
        text = _without_offsets(column.astype("string").str.strip())
        text = text.mask(text == "")
        chosen = date_format or _date_format(text, source)
        dates = _parse_dates(text, chosen)
        if date_format is not None and text.notna().any() and dates.isna().all():
            msg = (
                f"{source}: no date is in the format {date_format!r} "
                f"(e.g. {text.dropna().iloc[0]!r}); check --date-format"
            )
            raise DataSourceError(msg)
        bad = text.notna() & dates.isna()
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)  # the exchange's own day, not UTC's
    outside = dates.notna() & ((dates < _FIRST_DAY) | (dates > _LAST_DAY))
    dates = dates.mask(outside).dt.normalize().astype("datetime64[ns]")
    return dates, bad.astype(bool), outside.astype(bool)


def normalize(
    frame: pd.DataFrame, *, source: str, ticker: str | None = None, date_format: str | None = None
) -> pd.DataFrame:
    """Map a frame of any accepted layout onto the raw price layout (see :func:`read_frame`)."""
    return read_frame(frame, source=source, ticker=ticker, date_format=date_format).frame


def read_frame(
    frame: pd.DataFrame, *, source: str, ticker: str | None = None, date_format: str | None = None
) -> PriceBatch:
    """Read a frame of any accepted layout into the raw price layout, noting what is unreadable.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prices with columns named as in the module's table; a date index is used when there
        is no date column.
    source : str
        What to record in ``stock_prices.source``.
    ticker : str, optional
        The ticker of every row, for one-ticker files without a ticker column.
    date_format : str, optional
        The ``strptime`` format of text dates; found from the column when None.

    Raises
    ------
    DataSourceError
        When a required column is missing, or the dates are in no known format or ambiguous.
    """
    if not any(_ALIASES.get(_key(c)) == "date" for c in frame.columns):
        frame = frame.reset_index()
    renamed: dict[str, str] = {}
    for column in frame.columns:
        target = _ALIASES.get(_key(column))
        if target is not None and target not in renamed.values():
            renamed[column] = target
    out = frame.loc[:, list(renamed)].rename(columns=renamed).reset_index(drop=True)
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
    absent: dict[str, Any] = {"adj_close": out["close"], "volume": np.nan, "split_coefficient": 1.0}
    for column, value in absent.items():
        if column not in out.columns:
            out[column] = value

    out["ticker"] = out["ticker"].astype("string").str.strip().str.upper().fillna("")
    check = pd.Series(pd.NA, index=out.index, dtype="string")
    detail = pd.Series(pd.NA, index=out.index, dtype="string")

    def note(mask: pd.Series, name: UnreadableCheck, what: str, written: pd.Series) -> None:
        # Only the flagged rows' values are turned into text: a million would take seconds.
        fresh = mask & check.isna()
        if fresh.any():
            check[fresh] = name
            detail[fresh] = written[fresh].astype("string").str.strip().map(what.format)

    raw_dates = out["date"]
    out["date"], bad_date, outside = _dates(raw_dates, source, date_format)
    note(bad_date, "bad_date", "date {!r}", raw_dates)
    note(outside, "date_out_of_range", "date {} is outside 1678-2262", raw_dates)
    for column in (*PRICE_COLUMNS, "volume", "split_coefficient"):
        written = out[column]
        out[column], non_finite, garbage = _numbers(written)
        note(non_finite, "non_finite_value", column + " {}", written)
        if column in PRICE_COLUMNS:  # an unreadable volume or split is a missing one
            note(garbage, "not_a_number", column + " {!r}", written)
    # Yahoo writes 0 for "no split"; a ratio of 1 means the same and keeps the maths simple.
    split = out["split_coefficient"]
    out["split_coefficient"] = split.where((split > 0) | ~np.isfinite(split), 1.0)
    out["source"] = source
    unreadable = pd.DataFrame({"check": check, "detail": detail}).dropna()
    return PriceBatch(out.loc[:, list(RAW_COLUMNS)], source=source, unreadable=unreadable)


def load_sample() -> PriceBatch:
    """The bundled sample: S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``), 1999-2018.

    Real daily OHLC that ships with the ``arch`` package, so the demo runs offline.
    """
    from arch.data import nasdaq, sp500  # noqa: PLC0415  (only this source needs them)

    batches = [
        read_frame(module.load(), source="arch-sample", ticker=ticker)
        for ticker, module in zip(SAMPLE_TICKERS, (sp500, nasdaq), strict=True)
    ]
    return _concat(batches, "arch-sample")


def _concat(
    batches: Sequence[PriceBatch], source: str, unavailable: dict[str, str] | None = None
) -> PriceBatch:
    """One batch of several, the unreadable rows following their rows to the new index."""
    frames, unreadable, offset = [], [], 0
    for batch in batches:
        frames.append(batch.frame)
        unreadable.append(batch.unreadable.set_axis(batch.unreadable.index + offset))
        offset += len(batch.frame)
    return PriceBatch(
        pd.concat(frames, ignore_index=True), source, unavailable or {}, pd.concat(unreadable)
    )


def load_file(
    path: Path, *, ticker: str | None = None, date_format: str | None = None
) -> PriceBatch:
    """Prices from a CSV or Parquet file (by suffix; ``.csv.gz`` works too).

    Empty cells are missing values. ``nan`` and ``inf`` written in a number column are
    non-finite values, and the gate rejects their rows as such (Parquet keeps NaN apart from
    null, and the reader keeps that distinction).

    Raises
    ------
    DataSourceError
        When the file is missing, unreadable or has no usable columns, or its dates are in no
        known format or ambiguous (see ``date_format``).
    """
    if not path.is_file():
        msg = f"no such file: {path}"
        raise DataSourceError(msg)
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            frame = pd.read_parquet(path, dtype_backend="pyarrow")
        elif ".csv" in suffixes or ".txt" in suffixes:
            # Only an empty cell means "no value": pandas' default would read "nan" as one.
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        else:
            msg = f"{path}: unknown file type; use .csv or .parquet"
            raise DataSourceError(msg)
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise DataSourceError(msg) from exc
    source = f"file:{path.name}"[:64]
    return read_frame(frame, source=source, ticker=ticker, date_format=date_format)


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
    batches = []
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
        batches.append(read_frame(history, source="yfinance", ticker=ticker))
    if not batches:
        reasons = "; ".join(f"{t}: {why}" for t, why in unavailable.items())
        msg = f"Yahoo Finance returned no prices (is the network up?): {reasons}"
        raise DataSourceError(msg)
    return _concat(batches, "yfinance", unavailable)
