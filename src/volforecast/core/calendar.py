"""NYSE trading-day calendar for forecast dates and gap checks.

The holidays come from ``exchange_calendars`` (calendar ``XNYS``), which tracks one-off
closures too (11 September 2001, Hurricane Sandy, national days of mourning), rather than a
hand-kept list. Its sessions are loaded once per process, from 1990 to a few years ahead.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

CALENDAR_START = dt.date(1990, 1, 2)
_YEARS_AHEAD = 3


@lru_cache(maxsize=1)
def sessions() -> pd.DatetimeIndex:
    """Every NYSE session the calendar knows, as midnight timestamps."""
    import exchange_calendars as xc  # noqa: PLC0415  (import costs ~0.5 s; only when asked)

    end = dt.date.today().replace(month=12, day=31) + pd.DateOffset(years=_YEARS_AHEAD)
    calendar = xc.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=end.date())
    return pd.DatetimeIndex(calendar.sessions.tz_localize(None).normalize())


def calendar_end() -> dt.date:
    """The last session the calendar knows."""
    return sessions()[-1].date()


def is_trading_day(day: dt.date) -> bool:
    """Whether the NYSE is open on ``day``."""
    return pd.Timestamp(day) in sessions()


def trading_days_after(origin: dt.date, n: int) -> list[dt.date]:
    """The ``n`` NYSE sessions strictly after ``origin``: the dates of an ``n``-step forecast.

    ``origin`` is usually the date of the last close used and need not be a session; ``n`` is
    at least 1. Weekends, holidays and one-off closures are skipped.
    """
    if n < 1:
        msg = "a forecast needs at least one trading day"
        raise ValueError(msg)
    known = sessions()
    if pd.Timestamp(origin) < known[0]:
        msg = f"{origin} is before the calendar starts ({CALENDAR_START})"
        raise ValueError(msg)
    start = int(known.searchsorted(pd.Timestamp(origin), side="right"))
    if start + n > len(known):
        msg = f"{n} trading days after {origin} run past the calendar's end ({calendar_end()})"
        raise ValueError(msg)
    return [ts.date() for ts in known[start : start + n]]


def missing_sessions_between(dates: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """NYSE sessions missing between consecutive dates of a sorted series.

    For each of ``dates`` (datetime64, ascending), the number of sessions strictly between it
    and the previous date (0 for the first). Dates before the calendar starts count weekdays.
    """
    days = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates))).normalize()
    if len(days) == 0:
        return np.zeros(0, dtype=np.int64)
    known = sessions()
    # Position of each date among sessions; a non-session date sits where it would be inserted.
    left = known.searchsorted(days, side="left")
    right = known.searchsorted(days, side="right")
    gaps = np.zeros(len(days), dtype=np.int64)
    gaps[1:] = np.maximum(left[1:] - right[:-1], 0)
    early = days < known[0]
    if early.any():
        d = days.to_numpy().astype("datetime64[D]")
        weekday_gaps = np.zeros(len(days), dtype=np.int64)
        weekday_gaps[1:] = np.maximum(np.busday_count(d[:-1], d[1:]) - 1, 0)
        gaps[early] = weekday_gaps[early]
    return gaps
