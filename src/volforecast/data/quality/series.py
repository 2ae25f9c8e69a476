"""Checks of each ticker's series in date order: spikes, stale prices, series breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volforecast.core.calendar import missing_sessions_between
from volforecast.data.quality.report import MAX_EXAMPLES, CheckName, Finding, fmt_day
from volforecast.settings import QualitySettings


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
            f"{fmt_day(alive.at[i, 'date'])}: " + ", ".join(k for k, m in kinds.items() if m.at[i])
            for i in rows.index[-2::-1][:MAX_EXAMPLES]
        )
        detail = (
            f"series break on {fmt_day(day)}: {why}; the {len(before)} earlier rows are rejected"
            + (f" ({len(rows)} breaks in all)" if len(rows) > 1 else "")
        )
        out.append((str(ticker), before, Finding(check, len(before), detail, examples)))
    return out
