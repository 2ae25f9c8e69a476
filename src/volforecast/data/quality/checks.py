"""The checks: the pandera schema of a price row, the NYSE calendar, and each series in order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from volforecast.core import calendar
from volforecast.data.quality.report import MAX_EXAMPLES, CheckName, Finding, fmt_day
from volforecast.data.sources import PRICE_COLUMNS
from volforecast.data.tables import TICKER_LENGTH
from volforecast.settings import QualitySettings

# Letters, digits and the punctuation exchanges and Yahoo use (BRK.B, BF-B, ^GSPC, EURUSD=X).
TICKER_PATTERN = rf"^\^?[A-Z0-9][A-Z0-9.\-=]{{0,{TICKER_LENGTH - 2}}}$"


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
    not_negative = pa.Check(lambda s: s.isna() | (s >= 0), name="non_positive_price")
    finite = pa.Check(lambda s: s.isna() | np.isfinite(s), name="non_finite_value")
    symbol = pa.Check(lambda s: s.str.fullmatch(TICKER_PATTERN), name="bad_ticker")
    price = {c: pa.Column(float, [finite, positive]) for c in PRICE_COLUMNS}
    return pa.DataFrameSchema(
        {
            "ticker": pa.Column(str, symbol),
            "date": pa.Column("datetime64[ns]"),
            **price,
            "volume": pa.Column(float, [finite, not_negative], nullable=True),
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


def row_failures(frame: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
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


def calendar_failures(alive: pd.DataFrame) -> list[tuple[CheckName, pd.Series]]:
    """Rows dated after the calendar's last session, and rows on days that were no session.

    Before the calendar's first day (1990) only weekends can be told apart.
    """
    days = alive["date"]
    known = days.notna()
    late = known & (days > pd.Timestamp(calendar.calendar_end()))
    early = known & (days < pd.Timestamp(calendar.CALENDAR_START))
    closed = known & ~late & ~early & ~days.isin(calendar.sessions())
    closed |= early & (days.dt.day_of_week >= 5)
    out: list[tuple[CheckName, pd.Series]] = []
    if late.any():
        why = f"after {calendar.calendar_end()}, the last session the calendar knows"
        out.append(("date_out_of_range", pd.Series(why, index=alive.index[late])))
    if closed.any():
        out.append(("not_a_session", "no NYSE session (" + days[closed].dt.day_name() + ")"))
    return out


def _returns_pct(frame: pd.DataFrame, column: str = "adj_close") -> pd.Series:
    """Percent log returns within each ticker of a frame sorted by ticker and date."""
    log_price = pd.Series(np.log(frame[column].to_numpy(dtype="float64")), index=frame.index)
    return 100.0 * log_price.groupby(frame["ticker"], sort=False).diff()


def stale(alive: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
    """Repeats of a close held ``stale_days`` or more, with their run's length and start."""
    same = alive["close"].eq(alive.groupby("ticker", sort=False)["close"].shift())
    run_id = (~same).cumsum()
    run_length = run_id.map(run_id.value_counts())
    flagged = same & (run_length >= config.stale_days)
    run_start = alive.groupby(run_id)["date"].transform("first")
    return alive.loc[flagged].assign(run_length=run_length[flagged], run_start=run_start[flagged])


def spikes(alive: pd.DataFrame, config: QualitySettings) -> pd.DataFrame:
    """One-day moves the next day undoes, with both returns (percent)."""
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


def breaks(alive: pd.DataFrame, config: QualitySettings) -> list[tuple[str, pd.Index, Finding]]:
    """For each broken ticker: the rows before its last break, and the finding."""
    ret = _returns_pct(alive)
    raw_ret = _returns_pct(alive, "close")
    split_pct = 100.0 * np.log(alive["split_coefficient"])
    gaps = pd.Series(0, index=alive.index, dtype="int64")
    for _, rows in alive.groupby("ticker", sort=False):
        gaps.loc[rows.index] = calendar.missing_sessions_between(rows["date"].to_numpy())
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
            f"{fmt_day(alive.at[i, 'date'])}: " + ", ".join(k for k, m in kinds.items() if m.at[i])
            for i in rows.index[-2::-1][:MAX_EXAMPLES]
        )
        detail = (
            f"series break on {fmt_day(day)}: {why}; the {len(before)} earlier rows are rejected"
            + (f" ({len(rows)} breaks in all)" if len(rows) > 1 else "")
        )
        out.append((str(ticker), before, Finding(check, len(before), detail, examples)))
    return out
