"""The data-quality gate: which price rows may enter the store, and why the others may not.

The gate runs on every ingest and on stored prices before training. It never repairs a
value; it rejects and says why, per ticker, with counts and examples. Checks come in three
kinds:

* **what the source could not read** (:attr:`~volforecast.data.sources.PriceBatch.unreadable`):
  ``nan`` or ``inf`` written as a price, text that is no number, a date not in the column's
  format or outside what a timestamp holds. The row is rejected.
* **row checks** (a pandera schema): missing, non-finite or non-positive values, high below
  low, open or close outside [low, high], malformed ticker symbols. The row is rejected.
* **dates**: a day that is not an NYSE session (a weekend, a holiday, a day the exchange was
  closed), or one after the last session the calendar knows. The row is rejected.
* **duplicates**: several rows for one ticker and date. Identical copies collapse to one;
  conflicting copies are all rejected, since nothing says which is right.
* **series checks**, on what is left, in date order:

  - *spikes*: a move of at least ``spike_min_return_pct`` that the next day undoes within
    ``spike_reversal_tolerance``; the one bad print is rejected;
  - *stale prices*: the same close on ``stale_days`` or more consecutive rows; the repeats
    are rejected (forward-filled data would fake zero volatility);
  - *series breaks*: a gap of more than ``max_gap_trading_days`` missing NYSE sessions, a
    move beyond ``max_abs_return_pct`` that stays, or a split (``split_coefficient``) that the
    adjusted close does not reflect. Returns across a break are meaningless, so every row
    before the last break is rejected and the most recent consistent history is kept.

The gate is idempotent: the rows it accepts pass it again unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from volforecast.core.calendar import (
    CALENDAR_START,
    calendar_end,
    missing_sessions_between,
    sessions,
)
from volforecast.data.sources import PRICE_COLUMNS, RAW_COLUMNS
from volforecast.data.tables import TICKER_LENGTH
from volforecast.settings import QualitySettings

CheckName = Literal[
    "bad_ticker",
    "missing_value",
    "not_a_number",
    "non_finite_value",
    "bad_date",
    "date_out_of_range",
    "not_a_session",
    "non_positive_price",
    "high_below_low",
    "open_outside_range",
    "close_outside_range",
    "duplicate_date",
    "stale_price",
    "price_spike",
    "gap",
    "implausible_return",
    "unreflected_split",
    "source_unavailable",
]
CHECKS: tuple[CheckName, ...] = get_args(CheckName)
TickerStatus = Literal["ok", "partial", "rejected"]

# Letters, digits and the punctuation exchanges and Yahoo use (BRK.B, BF-B, ^GSPC, EURUSD=X).
TICKER_PATTERN = rf"^\^?[A-Z0-9][A-Z0-9.\-=]{{0,{TICKER_LENGTH - 2}}}$"
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    """One check that failed for one ticker."""

    check: CheckName
    rows: int
    """Rows rejected because of it."""
    detail: str
    examples: tuple[str, ...] = ()


@dataclass
class TickerQuality:
    """What the gate did with one ticker."""

    ticker: str
    received: int
    accepted: int = 0
    first_date: str | None = None
    last_date: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Rows rejected."""
        return self.received - self.accepted

    @property
    def status(self) -> TickerStatus:
        """``ok`` when nothing was rejected, ``rejected`` when nothing was accepted."""
        if self.accepted == 0:
            return "rejected"
        return "ok" if not self.findings else "partial"


@dataclass
class QualityReport:
    """Per-ticker outcome of one gate run."""

    tickers: dict[str, TickerQuality] = field(default_factory=dict)

    @property
    def rows_received(self) -> int:
        """Rows the gate saw."""
        return sum(t.received for t in self.tickers.values())

    @property
    def rows_accepted(self) -> int:
        """Rows the gate let through."""
        return sum(t.accepted for t in self.tickers.values())

    def with_status(self, status: TickerStatus) -> list[str]:
        """Tickers with the given status, sorted."""
        return sorted(t for t, q in self.tickers.items() if q.status == status)

    @property
    def clean(self) -> bool:
        """True when no check failed."""
        return all(not q.findings for q in self.tickers.values())

    def add_unavailable(self, ticker: str, reason: str) -> None:
        """Record a ticker the source could not deliver."""
        entry = self.tickers.setdefault(ticker, TickerQuality(ticker=ticker, received=0))
        entry.findings.append(Finding("source_unavailable", 0, reason))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for ``--report-json`` and for Airflow."""
        return {
            "rows_received": self.rows_received,
            "rows_accepted": self.rows_accepted,
            "tickers": {
                ticker: {
                    "status": q.status,
                    "received": q.received,
                    "accepted": q.accepted,
                    "first_date": q.first_date,
                    "last_date": q.last_date,
                    "findings": [
                        {
                            "check": f.check,
                            "rows": f.rows,
                            "detail": f.detail,
                            "examples": list(f.examples),
                        }
                        for f in q.findings
                    ],
                }
                for ticker, q in sorted(self.tickers.items())
            },
        }


@dataclass(frozen=True)
class GateResult:
    """The accepted rows, the rejected rows with their reasons, and the report."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    """Rejected rows in the raw layout plus a ``check`` column naming why."""
    report: QualityReport


def _fmt(value: float) -> str:
    return "missing" if pd.isna(value) else f"{value:.6g}"


def _day(value: Any) -> str:
    return "no date" if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def _row_schema(config: QualitySettings) -> Any:
    import pandera.pandas as pa  # noqa: PLC0415  (pandera costs ~0.7 s to import)

    tol = config.range_tolerance

    def within(column: str) -> Any:
        def check(df: pd.DataFrame) -> pd.Series:
            value, high, low = df[column], df["high"], df["low"]
            unknown = value.isna() | high.isna() | low.isna()
            inside = (value <= high * (1 + tol)) & (value >= low * (1 - tol))
            return unknown | inside

        return check

    def high_not_below_low(df: pd.DataFrame) -> pd.Series:
        return df["high"].isna() | df["low"].isna() | (df["high"] >= df["low"])

    # Custom checks, not pa.Check.gt & co.: failure cases report a custom check by its name.
    positive = pa.Check(lambda s: s > 0, name="non_positive_price")
    finite = pa.Check(lambda s: s.isna() | np.isfinite(s), name="non_finite_value")
    price = {c: pa.Column(float, [finite, positive]) for c in PRICE_COLUMNS}
    return pa.DataFrameSchema(
        {
            "ticker": pa.Column(
                str, pa.Check(lambda s: s.str.fullmatch(TICKER_PATTERN), name="bad_ticker")
            ),
            "date": pa.Column("datetime64[ns]"),
            **price,
            "volume": pa.Column(
                float,
                [finite, pa.Check(lambda s: s.isna() | (s >= 0), name="non_positive_price")],
                nullable=True,
            ),
            "split_coefficient": pa.Column(float, finite),
        },
        checks=[
            pa.Check(high_not_below_low, name="high_below_low"),
            pa.Check(within("open"), name="open_outside_range"),
            pa.Check(within("close"), name="close_outside_range"),
        ],
        strict=False,
        coerce=False,
    )


def _row_failures(frame: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
    """(index, check) pairs of rows that fail a row check."""
    import pandera.errors as pa_errors  # noqa: PLC0415

    schema = _row_schema(config)
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        # A failure without a row (a wrong dtype, a missing column) means the caller passed
        # something other than the raw layout: a bug to surface, not data to reject.
        schema_level = cases[cases["index"].isna()]
        if not schema_level.empty:
            problems = "; ".join(
                f"{row.column}: {row.check} ({row.failure_case})"
                for row in schema_level.itertuples()
            )
            msg = f"the frame is not in the raw price layout: {problems}"
            raise ValueError(msg) from exc
        cases = cases[cases["index"].notna()]
        check = cases["check"].astype(str).replace({"not_nullable": "missing_value"})
        out = pd.DataFrame({"index": cases["index"].astype("int64"), "check": check})
        return out.drop_duplicates().reset_index(drop=True)
    return pd.DataFrame({"index": pd.Series(dtype="int64"), "check": pd.Series(dtype=str)})


def _row_example(check: str, row: pd.Series) -> str:
    day = _day(row["date"])
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
        return (
            f"{day}: {column} {_fmt(row[column])} outside [{_fmt(row['low'])}, {_fmt(row['high'])}]"
        )
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
    config : QualitySettings
        Thresholds.
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

    def reject(index: pd.Index, check: CheckName) -> None:
        fresh = index[reason.loc[index].isna()]
        reason.loc[fresh] = check

    # 1. What the source could not read, then the row checks. A malformed ticker fails every
    # one of its rows.
    for unread, why in _unreadable(unreadable, raw.index):
        reject(why.index, unread)
        _report_rows(frame, report, unread, why, labels=raw.index)
    failures = _row_failures(frame, config)
    bad_ticker_rows = failures.loc[failures["check"] == "bad_ticker", "index"]
    for ticker in frame.loc[bad_ticker_rows, "ticker"].unique():
        rows = frame.index[frame["ticker"] == ticker]
        reject(rows, "bad_ticker")
        shown = ticker if ticker else "(empty)"
        report.tickers[ticker].findings.append(
            Finding("bad_ticker", len(rows), f"{shown!r} is not a ticker symbol")
        )
    for check, detail in _ROW_DETAIL.items():
        hit = failures.loc[failures["check"] == check, "index"].to_numpy()
        hit = hit[reason.loc[hit].isna().to_numpy()]
        if len(hit) == 0:
            continue
        reject(pd.Index(hit), check)  # type: ignore[arg-type]
        for ticker, rows in frame.loc[hit].groupby("ticker"):
            examples = tuple(
                _row_example(check, row) for _, row in rows.head(MAX_EXAMPLES).iterrows()
            )
            report.tickers[str(ticker)].findings.append(
                Finding(check, len(rows), detail, examples)  # type: ignore[arg-type]
            )

    # 2. Days the exchange was not open, then duplicate dates, among the rows still standing.
    for closed, why in _calendar_failures(frame[reason.isna()]):
        reject(why.index, closed)
        _report_rows(frame, report, closed, why)
    alive = frame[reason.isna()]
    dup_mask = alive.duplicated(["ticker", "date"], keep=False)
    if dup_mask.any():
        dups = alive[dup_mask]
        for (ticker, day), copies in dups.groupby(["ticker", "date"], sort=True):
            identical = len(copies.drop_duplicates(subset=list(PRICE_COLUMNS))) == 1
            drop = copies.index[1:] if identical else copies.index
            reject(drop, "duplicate_date")
            what = "identical copies, one kept" if identical else "conflicting prices, all dropped"
            example = f"{_day(day)}: {len(copies)} rows, {what}"
            entry = report.tickers[str(ticker)]
            _merge(entry, "duplicate_date", len(drop), "several rows for one date", example)

    # 3. Series checks, on what is left, per ticker in date order. Spikes go first: a bad print
    # inside a forward-filled stretch would otherwise split it into runs too short to see.
    alive = frame[reason.isna()].sort_values(["ticker", "date"])
    spikes = _spikes(alive, config)
    reject(spikes.index, "price_spike")
    _report_groups(
        report, spikes, "price_spike", "one-day move undone the next day", _spike_example
    )

    alive = alive.drop(spikes.index)
    stale = _stale(alive, config)
    reject(stale.index, "stale_price")
    stale_detail = "same close on consecutive days"
    _report_groups(report, stale, "stale_price", stale_detail, _stale_example, one_per="run_start")

    alive = alive.drop(stale.index)
    for ticker, before, finding in _breaks(alive, config):
        reject(before, finding.check)
        report.tickers[ticker].findings.append(finding)

    accepted_mask = reason.isna()
    accepted = frame[accepted_mask].sort_values(["ticker", "date"]).reset_index(drop=True)
    rejected = frame[~accepted_mask].assign(check=reason[~accepted_mask])
    for ticker, rows in accepted.groupby("ticker"):
        entry = report.tickers[str(ticker)]
        entry.accepted = len(rows)
        entry.first_date = _day(rows["date"].iloc[0])
        entry.last_date = _day(rows["date"].iloc[-1])
    return GateResult(accepted=accepted, rejected=rejected, report=report)


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
    check: str,
    what: pd.Series,
    labels: pd.Index | None = None,
) -> None:
    """Findings of one check by ticker; ``what`` says what is wrong, by position in ``frame``.

    With ``labels`` (the source's row labels) an example names the row: ``row 17`` is the
    17th data row of a file.
    """
    flagged = pd.DataFrame({"ticker": frame.loc[what.index, "ticker"], "what": what})
    for ticker, group in flagged.groupby("ticker"):
        shown = group["what"].head(MAX_EXAMPLES).items()
        examples = tuple(f"{_place(frame, int(at), labels)}: {text}" for at, text in shown)  # type: ignore[call-overload]
        finding = Finding(check, len(group), _SOURCE_DETAIL[check], examples)  # type: ignore[arg-type]
        report.tickers[str(ticker)].findings.append(finding)


def _place(frame: pd.DataFrame, at: int, labels: pd.Index | None) -> str:
    """``row 17, 2018-01-05``: where an example sits (its row only when it came from a source)."""
    day = frame["date"].iloc[at]
    parts = [] if labels is None else [f"row {labels[at] + 1}"]
    return ", ".join([*parts, _day(day)] if pd.notna(day) else parts)


def _unreadable(
    unreadable: pd.DataFrame | None, labels: pd.Index
) -> list[tuple[CheckName, pd.Series]]:
    """The source's unreadable rows by check, their details indexed by position in ``labels``."""
    if unreadable is None or unreadable.empty:
        return []
    at = labels.get_indexer(unreadable.index)
    kept = unreadable[at >= 0].set_axis(pd.Index(at[at >= 0]))
    return [(check, rows["detail"]) for check, rows in kept.groupby("check")]  # type: ignore[misc]


def _calendar_failures(alive: pd.DataFrame) -> list[tuple[CheckName, pd.Series]]:
    """Rows dated after the calendar's last session, and rows on days that were no session.

    Before the calendar's first day (1990) only weekends can be told apart.
    """
    days = alive["date"]
    known = days.notna()
    late = known & (days > pd.Timestamp(calendar_end()))
    early = known & (days < pd.Timestamp(CALENDAR_START))
    closed = known & ~late & ~early & ~days.isin(sessions())
    closed |= early & (days.dt.day_of_week >= 5)
    out: list[tuple[CheckName, pd.Series]] = []
    if late.any():
        why = f"after {calendar_end()}, the last session the calendar knows"
        out.append(("date_out_of_range", pd.Series(why, index=alive.index[late])))
    if closed.any():
        out.append(("not_a_session", "no NYSE session (" + days[closed].dt.day_name() + ")"))
    return out


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


def _returns_pct(frame: pd.DataFrame, column: str = "adj_close") -> pd.Series:
    """Percent log returns within each ticker of a frame sorted by ticker and date."""
    log_price = pd.Series(np.log(frame[column].to_numpy(dtype="float64")), index=frame.index)
    return 100.0 * log_price.groupby(frame["ticker"], sort=False).diff()


def _stale(alive: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
    same = alive["close"].eq(alive.groupby("ticker", sort=False)["close"].shift())
    run_id = (~same).cumsum()
    run_length = run_id.map(run_id.value_counts())
    flagged = same & (run_length >= config.stale_days)
    run_start = alive.groupby(run_id)["date"].transform("first")
    return alive.loc[flagged].assign(run_length=run_length[flagged], run_start=run_start[flagged])


def _stale_example(row: pd.Series) -> str:
    return f"close {_fmt(row['close'])} for {row['run_length']} days from {_day(row['run_start'])}"


def _spike_example(row: pd.Series) -> str:
    return f"{_day(row['date'])}: {row['ret']:+.1f}% then {row['next_ret']:+.1f}%"


def _spikes(alive: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
    ret = _returns_pct(alive)
    next_ret = ret.groupby(alive["ticker"], sort=False).shift(-1)
    size = ret.abs()
    reverses = (ret * next_ret) < 0
    flagged: pd.Series = (
        (size >= config.spike_min_return_pct)
        & reverses
        & ((ret + next_ret).abs() <= config.spike_reversal_tolerance * size)
    )
    return alive.loc[flagged].assign(ret=ret[flagged], next_ret=next_ret[flagged])


def _breaks(alive: pd.DataFrame, config: QualitySettings) -> list[tuple[str, pd.Index, Finding]]:
    """For each broken ticker: the rows before its last break, and the finding."""
    ret = _returns_pct(alive)
    raw_ret = _returns_pct(alive, "close")
    split_pct = 100.0 * np.log(alive["split_coefficient"])
    gaps = pd.Series(0, index=alive.index, dtype="int64")
    for _, rows in alive.groupby("ticker", sort=False):
        gaps.loc[rows.index] = missing_sessions_between(rows["date"].to_numpy())
    tol = config.split_tolerance_pct
    kinds: dict[CheckName, pd.Series] = {
        "gap": gaps > config.max_gap_trading_days,
        "implausible_return": ret.abs() > config.max_abs_return_pct,
        "unreflected_split": (
            (split_pct.abs() > tol)
            & ((raw_ret + split_pct).abs() <= tol)
            & ((ret + split_pct).abs() <= tol)
        ),
    }
    flagged = kinds["gap"] | kinds["implausible_return"] | kinds["unreflected_split"]
    out: list[tuple[str, pd.Index, Finding]] = []
    gap_n = gaps.to_numpy()
    ret_pct = ret.to_numpy()
    split = alive["split_coefficient"].to_numpy(dtype="float64")
    for ticker, rows in alive.loc[flagged].groupby("ticker", sort=False):
        last = rows.index[-1]
        at = int(alive.index.get_loc(last))  # type: ignore[arg-type]
        day = alive.at[last, "date"]
        check = next(k for k, mask in kinds.items() if mask.at[last])
        if check == "gap":
            why = f"{gap_n[at]} NYSE sessions without an accepted price before it"
        elif check == "implausible_return":
            why = f"adjusted close moves {ret_pct[at]:+.1f}% and stays"
        else:
            why = f"split {split[at]:g}:1 shows in the adjusted close too ({ret_pct[at]:+.1f}%)"
        ticker_rows = alive.index[alive["ticker"] == ticker]
        before = ticker_rows[alive.loc[ticker_rows, "date"] < day]
        # The last break is in the detail; the examples show the earlier ones, newest first.
        examples = tuple(
            f"{_day(alive.at[i, 'date'])}: " + ", ".join(k for k, m in kinds.items() if m.at[i])
            for i in rows.index[-2::-1][:MAX_EXAMPLES]
        )
        detail = (
            f"series break on {_day(day)}: {why}; the {len(before)} earlier rows are rejected"
            + (f" ({len(rows)} breaks in all)" if len(rows) > 1 else "")
        )
        out.append((str(ticker), before, Finding(check, len(before), detail, examples)))
    return out
