"""The gate: every check in turn over a frame of prices, and the report of what each found."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from volforecast.data.quality.checks import breaks, calendar_failures, row_failures, spikes, stale
from volforecast.data.quality.report import (
    MAX_EXAMPLES,
    CheckName,
    Finding,
    GateResult,
    QualityReport,
    TickerQuality,
    fmt_day,
)
from volforecast.data.sources import PRICE_COLUMNS, RAW_COLUMNS
from volforecast.settings import QualitySettings


def _fmt(value: float) -> str:
    return "missing" if pd.isna(value) else f"{value:.6g}"


def _row_example(check: str, row: pd.Series) -> str:
    day = fmt_day(row["date"])
    if check == "missing_value":
        empty = [c for c in ("date", *PRICE_COLUMNS) if pd.isna(row[c])]
        return f"{day}: no {', '.join(empty)}"
    if check == "non_finite_value":
        numbers = (*PRICE_COLUMNS, "volume", "split_coefficient")
        bad = [f"{c} {row[c]}" for c in numbers if pd.notna(row[c]) and not np.isfinite(row[c])]
        return f"{day}: {', '.join(bad)}"
    if check == "non_positive_price":
        bad = [f"{c} {_fmt(row[c])}" for c in (*PRICE_COLUMNS, "volume") if row[c] <= 0]
        return f"{day}: {', '.join(bad)}"
    if check == "high_below_low":
        return f"{day}: high {_fmt(row['high'])} < low {_fmt(row['low'])}"
    if check in {"open_outside_range", "close_outside_range"}:
        column = check.split("_", 1)[0]
        low, high = _fmt(row["low"]), _fmt(row["high"])
        return f"{day}: {column} {_fmt(row[column])} outside [{low}, {high}]"
    return day


_ROW_DETAIL = {
    "missing_value": "missing date or price",
    "non_finite_value": "a value that is not a finite number",
    "non_positive_price": "price or volume not positive",
    "high_below_low": "high below low",
    "open_outside_range": "open outside [low, high]",
    "close_outside_range": "close outside [low, high]",
}


def stored_unreadable(prices: pd.DataFrame) -> pd.DataFrame:
    """What stored prices hold that no source could have meant: NaN in a column that is NOT NULL.

    Read back, a NaN looks like a missing value, but the columns are NOT NULL: it is a NaN
    that an older version stored (PostgreSQL ranked it above zero), and the gate is to judge it
    as the non-finite value it is. In the layout of :attr:`PriceBatch.unreadable`.
    """
    found = [
        pd.DataFrame({"check": "non_finite_value", "detail": f"{column} nan"},
                     index=prices.index[prices[column].isna()])
        for column in PRICE_COLUMNS
    ]  # fmt: skip
    marks = pd.concat(found)
    return marks[~marks.index.duplicated()]


def run_gate(
    raw: pd.DataFrame, config: QualitySettings, unreadable: pd.DataFrame | None = None
) -> GateResult:
    """Judge a frame in the raw price layout.

    Parameters
    ----------
    raw : pandas.DataFrame
        Rows in the layout of :data:`volforecast.data.sources.RAW_COLUMNS`, any order.
    unreadable : pandas.DataFrame, optional
        What the source could not read (:attr:`~volforecast.data.sources.PriceBatch.unreadable`),
        by the index labels of ``raw``; rows no longer in ``raw`` are ignored.

    Returns
    -------
    GateResult
        ``accepted`` sorted by ticker and date with a fresh index; ``rejected`` with the first
        reason found for each row; the per-ticker report.
    """
    frame = raw.loc[:, list(RAW_COLUMNS)].reset_index(drop=True)
    report = QualityReport()
    for ticker, received in frame.groupby("ticker", sort=True).size().items():
        report.tickers[str(ticker)] = TickerQuality(ticker=str(ticker), received=int(received))
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    for unread, why in _unreadable(unreadable, raw.index):
        _reject(reason, why.index, unread)
        _report_rows(frame, report, unread, why, labels=raw.index)
    _check_rows(frame, config, report, reason)
    _check_dates(frame, report, reason)
    _check_series(frame, config, report, reason)

    accepted_mask = reason.isna()
    accepted = frame[accepted_mask].sort_values(["ticker", "date"]).reset_index(drop=True)
    rejected = frame[~accepted_mask].assign(check=reason[~accepted_mask])
    for ticker, rows in accepted.groupby("ticker"):
        entry = report.tickers[str(ticker)]
        entry.accepted = len(rows)
        entry.first_date = fmt_day(rows["date"].iloc[0])
        entry.last_date = fmt_day(rows["date"].iloc[-1])
    return GateResult(accepted=accepted, rejected=rejected, report=report)


def _reject(reason: pd.Series, index: pd.Index, check: CheckName) -> None:
    """Give ``check`` as the reason of the rows of ``index`` that no earlier check rejected."""
    reason.loc[index[reason.loc[index].isna()]] = check


def _check_rows(
    frame: pd.DataFrame, config: QualitySettings, report: QualityReport, reason: pd.Series
) -> None:
    """The schema's row checks. A malformed ticker fails every one of its rows."""
    failures = row_failures(frame, config)
    bad_ticker_rows = failures.loc[failures["check"] == "bad_ticker", "index"]
    for ticker in frame.loc[bad_ticker_rows, "ticker"].unique():
        rows = frame.index[frame["ticker"] == ticker]
        _reject(reason, rows, "bad_ticker")
        shown = ticker if ticker else "(empty)"
        report.tickers[ticker].findings.append(
            Finding("bad_ticker", len(rows), f"{shown!r} is not a ticker symbol")
        )
    for check, detail in _ROW_DETAIL.items():
        hit = failures.loc[failures["check"] == check, "index"].to_numpy()
        hit = hit[reason.loc[hit].isna().to_numpy()]
        if len(hit) == 0:
            continue
        _reject(reason, pd.Index(hit), check)  # type: ignore[arg-type]
        _report_groups(report, frame.loc[hit], check, detail, partial(_row_example, check))  # type: ignore[arg-type]


def _check_dates(frame: pd.DataFrame, report: QualityReport, reason: pd.Series) -> None:
    """Days the exchange was not open, then duplicate dates, among the rows still standing."""
    for closed, why in calendar_failures(frame[reason.isna()]):
        _reject(reason, why.index, closed)
        _report_rows(frame, report, closed, why)
    alive = frame[reason.isna()]
    dups = alive[alive.duplicated(["ticker", "date"], keep=False)]
    for (ticker, day), copies in dups.groupby(["ticker", "date"], sort=True):
        identical = len(copies.drop_duplicates(subset=list(PRICE_COLUMNS))) == 1
        drop = copies.index[1:] if identical else copies.index
        _reject(reason, drop, "duplicate_date")
        what = "identical copies, one kept" if identical else "conflicting prices, all dropped"
        example = f"{fmt_day(day)}: {len(copies)} rows, {what}"
        entry = report.tickers[str(ticker)]
        _merge(entry, "duplicate_date", len(drop), "several rows for one date", example)


def _check_series(
    frame: pd.DataFrame, config: QualitySettings, report: QualityReport, reason: pd.Series
) -> None:
    """Series checks, on what is left, per ticker in date order."""
    # Spikes go first: a bad print inside a forward-filled stretch would otherwise split it
    # into runs too short to see.
    alive = frame[reason.isna()].sort_values(["ticker", "date"])
    spiked = spikes(alive, config)
    _reject(reason, spiked.index, "price_spike")
    spike_detail = "one-day move undone the next day"
    _report_groups(report, spiked, "price_spike", spike_detail, _spike_example)

    alive = alive.drop(spiked.index)
    held = stale(alive, config)
    _reject(reason, held.index, "stale_price")
    stale_detail = "same close on consecutive days"
    _report_groups(report, held, "stale_price", stale_detail, _stale_example, one_per="run_start")

    alive = alive.drop(held.index)
    for ticker, before, finding in breaks(alive, config):
        _reject(reason, before, finding.check)
        report.tickers[ticker].findings.append(finding)


_SOURCE_DETAIL: dict[str, str] = {
    "not_a_number": "text that is not a number",
    "non_finite_value": _ROW_DETAIL["non_finite_value"],
    "bad_date": "a date not in the column's format",
    "date_out_of_range": "a date outside the range a price can have",
    "not_a_session": "a day the NYSE was not open",
}


def _report_rows(
    frame: pd.DataFrame,
    report: QualityReport,
    check: CheckName,
    what: pd.Series,
    labels: pd.Index | None = None,
) -> None:
    """Findings of one check by ticker; ``what`` says what is wrong, by position in ``frame``.

    With ``labels`` (the source's row labels) an example names the row: ``row 17`` is the
    17th data row of a file.
    """
    flagged = pd.DataFrame({"ticker": frame.loc[what.index, "ticker"], "what": what})

    def example(row: pd.Series) -> str:
        at = int(row.name)  # type: ignore[call-overload]
        day = frame["date"].iloc[at]
        parts = [] if labels is None else [f"row {labels[at] + 1}"]
        return ", ".join([*parts, fmt_day(day)] if pd.notna(day) else parts) + f": {row['what']}"

    _report_groups(report, flagged, check, _SOURCE_DETAIL[check], example)


def _unreadable(
    unreadable: pd.DataFrame | None, labels: pd.Index
) -> list[tuple[CheckName, pd.Series]]:
    """The source's unreadable rows by check, their details indexed by position in ``labels``."""
    if unreadable is None or unreadable.empty:
        return []
    at = labels.get_indexer(unreadable.index)
    kept = unreadable[at >= 0].set_axis(pd.Index(at[at >= 0]))
    return [(check, rows["detail"]) for check, rows in kept.groupby("check")]  # type: ignore[misc]


def _merge(entry: TickerQuality, check: CheckName, rows: int, detail: str, example: str) -> None:
    for i, finding in enumerate(entry.findings):
        if finding.check == check:
            examples = finding.examples
            if len(examples) < MAX_EXAMPLES:
                examples = (*examples, example)
            entry.findings[i] = Finding(check, finding.rows + rows, detail, examples)
            return
    entry.findings.append(Finding(check, rows, detail, (example,)))


def _report_groups(
    report: QualityReport,
    flagged: pd.DataFrame,
    check: CheckName,
    detail: str,
    example: Any,
    *,
    one_per: str | None = None,
) -> None:
    for ticker, rows in flagged.groupby("ticker"):
        shown = rows if one_per is None else rows.drop_duplicates(one_per)
        examples = tuple(example(row) for _, row in shown.head(MAX_EXAMPLES).iterrows())
        report.tickers[str(ticker)].findings.append(Finding(check, len(rows), detail, examples))


def _stale_example(row: pd.Series) -> str:
    start = fmt_day(row["run_start"])
    return f"close {_fmt(row['close'])} for {row['run_length']} days from {start}"


def _spike_example(row: pd.Series) -> str:
    return f"{fmt_day(row['date'])}: {row['ret']:+.1f}% then {row['next_ret']:+.1f}%"
