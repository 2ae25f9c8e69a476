"""Whether the stored prices are fresh enough for a run: the one place that decides.

A run is for a date: the DAG's logical date, ``--as-of``, or by default the latest NYSE
session whose close has passed in New York. It needs the close of the latest NYSE session on
or before that date; when the last stored close is older, the prices are stale. The wall clock
only ever picks the default date, so a backfill of 2018 judges 2018's prices, never today's.
:func:`judge` decides from two dates; :func:`check_freshness` reads the last close and calls
it. The CLI (``volforecast predict``), the DAGs (through the CLI), ``/health`` and the
dashboard's banner all call :func:`check_freshness`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from volforecast.core.calendar import sessions
from volforecast.data.repositories.prices import PRICES
from volforecast.errors import StalePricesError

NEW_YORK = ZoneInfo("America/New_York")
CLOSE_TIME = dt.time(16, 0)
"""The NYSE's regular close, New York time; a session counts as done from then on."""


@dataclass(frozen=True)
class Freshness:
    """The stored prices judged against the NYSE session a run is for."""

    as_of: dt.date
    """The run's date (may be a weekend or a holiday)."""
    session: dt.date
    """The latest NYSE session on or before ``as_of``: the close the run needs."""
    last_close: dt.date | None
    """The last stored close on or before ``as_of``; None when none is stored."""
    sessions_behind: int
    """NYSE sessions from ``last_close`` (exclusive) to ``session`` (inclusive); 0 when fresh."""

    @property
    def fresh(self) -> bool:
        """The close of ``session`` is stored."""
        return self.sessions_behind == 0

    @property
    def stale_since(self) -> dt.date | None:
        """The first session whose close is missing; None when fresh."""
        if self.fresh:
            return None
        if self.last_close is None:
            return self.session
        return next_session(self.last_close)

    @property
    def message(self) -> str:
        """One sentence: fresh, or how stale and what to do."""
        if self.fresh:
            return f"prices are fresh: the last stored close is {self.last_close}"
        if self.last_close is None:
            return (f"no stored close on or before {self.as_of}: load prices "
                    "(`volforecast ingest`) first")  # fmt: skip
        behind = "1 session" if self.sessions_behind == 1 else f"{self.sessions_behind} sessions"
        return (
            f"prices are stale: the last stored close is {self.last_close}, {behind} behind "
            f"the NYSE session of {self.session} this run is for; load newer prices "
            "(`volforecast ingest`), or pass --allow-stale to forecast from that close anyway"
        )

    @property
    def health_detail(self) -> str:
        """``fresh`` or ``stale since YYYY-MM-DD``, with the dates, for ``/health``."""
        if self.fresh:
            return f"fresh: last close {self.last_close}, NYSE session {self.session}"
        last = "none stored" if self.last_close is None else str(self.last_close)
        return f"stale since {self.stale_since}: last close {last}, NYSE session {self.session}"

    def to_dict(self) -> dict[str, Any]:
        """The dates, ISO, and whether the prices are fresh: the reports' JSON form."""
        return {
            "as_of": self.as_of.isoformat(),
            "session": self.session.isoformat(),
            "last_close": None if self.last_close is None else self.last_close.isoformat(),
            "fresh": self.fresh,
        }

    def raise_if_stale(self) -> None:
        """Raise :class:`~volforecast.errors.StalePricesError` with :attr:`message` if stale."""
        if not self.fresh:
            raise StalePricesError(self.message)


def session_on_or_before(day: dt.date) -> dt.date:
    """The latest NYSE session on or before ``day`` (``day`` itself when it is one)."""
    known = sessions()
    position = int(known.searchsorted(pd.Timestamp(day), side="right"))
    if position == 0:  # before the calendar: the weekday on or before
        return dt.date.fromisoformat(str(np.busday_offset(day, 0, roll="backward")))
    return known[position - 1].date()


def next_session(day: dt.date) -> dt.date:
    """The first NYSE session strictly after ``day``."""
    known = sessions()
    return known[int(known.searchsorted(pd.Timestamp(day), side="right"))].date()


def sessions_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """The NYSE sessions from ``start`` to ``end``, both included."""
    known = sessions()
    chosen = known[(known >= pd.Timestamp(start)) & (known <= pd.Timestamp(end))]
    return [ts.date() for ts in chosen]


def latest_closed_session(now: dt.datetime | None = None) -> dt.date:
    """The default date of a run: today's NYSE session once it has closed, else the one before.

    ``now`` (timezone-aware; the current time by default) is read in New York, the exchange's
    own time, so an evening in Europe or Asia does not move the date.
    """
    local = (now or dt.datetime.now(dt.UTC)).astimezone(NEW_YORK)
    today = local.date()
    if local.time() < CLOSE_TIME:
        today -= dt.timedelta(days=1)
    return session_on_or_before(today)


def judge(last_close: dt.date | None, as_of: dt.date) -> Freshness:
    """Judge the last stored close on or before ``as_of`` (None: none) against that date.

    A weekend or holiday ``as_of`` asks for the session before it.
    """
    session = session_on_or_before(as_of)
    if last_close is None:  # stale however early the date (even before the calendar)
        behind = max(len(sessions_between(sessions()[0].date(), session)), 1)
    elif last_close >= session:
        behind = 0
    else:
        behind = len(sessions_between(next_session(last_close), session))
    return Freshness(as_of=as_of, session=session, last_close=last_close, sessions_behind=behind)


def check_freshness(
    engine: Engine,
    as_of: dt.date | None = None,
    *,
    tickers: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> Freshness:
    """Read the last stored close and judge it against ``as_of``.

    ``as_of`` defaults to :func:`latest_closed_session` of ``now``. The last close is the
    latest of ``tickers`` (every stored ticker by default): a store is fresh when any ticker
    has the session's close, since a ticker that stopped trading must not hold the rest back.

    Raises
    ------
    sqlalchemy.exc.OperationalError
        When the database cannot be read (callers map it to their own unavailable error).
    """
    day = latest_closed_session(now) if as_of is None else as_of
    query = select(func.max(PRICES.c.date)).where(PRICES.c.date <= day)
    if tickers is not None:
        query = query.where(PRICES.c.ticker.in_(list(tickers)))
    with engine.connect() as connection:
        last = connection.execute(query).scalar_one_or_none()
    if last is not None and not isinstance(last, dt.date):
        last = dt.date.fromisoformat(str(last))  # SQLite hands back aggregates of DATEs as text
    return judge(last, day)
