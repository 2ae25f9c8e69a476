"""Checks of single rows: the pandera schema of a price row, and the NYSE calendar."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from volforecast.core.calendar import CALENDAR_START, calendar_end, sessions
from volforecast.data.quality.report import CheckName
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
