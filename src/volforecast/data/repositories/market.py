"""The market series ``market.market_variance`` and its refresh mark ``market.market_refresh``.

A price write lowers the mark in its own transaction (:func:`mark_market_stale`); a refresh
replaces the series from the mark on and clears it, unless prices changed meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import cast

import pandas as pd
from sqlalchemy import (
    Connection,
    String,
    Table,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)

from volforecast.data.db import Repository, as_date, writing
from volforecast.data.tables import MarketRefresh, MarketVariance
from volforecast.data.upsert import dialect_insert

log = logging.getLogger(__name__)

MARKET = cast("Table", MarketVariance.__table__)
MARKET_REFRESH = cast("Table", MarketRefresh.__table__)


@dataclass(frozen=True)
class StaleMark:
    """The market series is stale from ``since`` on; ``revision`` counts the price changes."""

    since: dt.date
    revision: int


def mark_market_stale(connection: Connection, since: dt.date, *, now: dt.datetime) -> None:
    """Lower the refresh mark to ``since`` in the caller's transaction (the price write's)."""
    statement = dialect_insert(connection, MARKET_REFRESH)
    statement = statement.values(id=1, since=since, revision=1, changed_at=now)
    table, new = MARKET_REFRESH.c, statement.excluded
    lower = or_(table.since.is_(None), new.since < table.since)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.id],
            set_={
                "since": case((lower, new.since), else_=table.since),
                "revision": table.revision + 1,
                "changed_at": new.changed_at,
            },
        )
    )


class MarketRepository(Repository):
    """The market series in ``market.market_variance`` (see :class:`MarketVariance`)."""

    def replace(
        self,
        log_rv: pd.Series,
        tickers: pd.Series,
        *,
        computed_at: dt.datetime,
        clears: StaleMark | None = None,
    ) -> int:
        """Store the days of ``log_rv`` in place of what was stored from its first day on.

        Parameters
        ----------
        log_rv : pandas.Series
            The market's log range variance by date
            (:func:`~volforecast.core.features.market_log_rv`).
        tickers : pandas.Series
            Tickers averaged on each of those dates.
        clears : StaleMark, optional
            The refresh mark this computation answers: deleted in the same transaction, unless
            a price changed since it was read (then the mark stays for the next refresh).

        Returns
        -------
        int
            Days stored. One transaction: a reader sees the old days or the new, never a mix.
        """
        counts = tickers.reindex(log_rv.index).to_numpy()
        values = [
            {"date": day.date(), "log_rv": float(value), "tickers": int(count),
             "computed_at": computed_at}
            for day, value, count in zip(
                pd.DatetimeIndex(log_rv.index), log_rv.to_numpy(), counts, strict=True
            )
        ]  # fmt: skip
        with writing(self.engine) as connection:
            if connection.dialect.name == "postgresql":
                # Two ingests at once would each delete, then both insert the same days. This
                # lock queues writers and lets readers through; the second writer's delete then
                # sees the first's rows. SQLite's write lock, taken at BEGIN, does the same.
                connection.execute(
                    text(f"LOCK TABLE {MARKET.schema}.{MARKET.name} IN SHARE ROW EXCLUSIVE MODE")
                )
            if clears is not None and _revision(connection) != clears.revision:
                # Prices changed since the mark was read: this series may lack them, so it is
                # not stored, and the mark stays for the refresh of the write that changed them.
                log.info("market series not stored: prices changed while it was computed")
                return 0
            if values:
                # Days from the first on are replaced whole, so a day no ticker has any more goes.
                first = pd.Timestamp(log_rv.index.min()).date()
                connection.execute(delete(MARKET).where(MARKET.c.date >= first))
                connection.execute(insert(MARKET), values)
            if clears is not None:
                connection.execute(update(MARKET_REFRESH).values(since=None))
        return len(values)

    def stale(self) -> StaleMark | None:
        """Where the series is stale from, when a price changed since its last refresh."""
        query = select(MARKET_REFRESH.c.since, MARKET_REFRESH.c.revision).where(
            MARKET_REFRESH.c.since.is_not(None)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else StaleMark(as_date(row.since), int(row.revision))

    def count(self) -> int:
        """Days stored."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(MARKET)).scalar_one())

    def load(self, *, end: dt.date | None = None) -> pd.Series:
        """The stored series by date (a DatetimeIndex), oldest first; empty when none is."""
        query = select(type_coerce(MARKET.c.date, String), MARKET.c.log_rv).order_by(MARKET.c.date)
        if end is not None:
            query = query.where(MARKET.c.date <= end)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        index = pd.DatetimeIndex(pd.to_datetime([d for d, _ in rows])).astype("datetime64[ns]")
        return pd.Series([v for _, v in rows], index=index, dtype="float64", name="market_log_rv")


def _revision(connection: Connection) -> int | None:
    """The refresh mark's revision, locked until the caller's transaction ends."""
    query = select(MARKET_REFRESH.c.revision)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    found = connection.execute(query).scalar_one_or_none()
    return None if found is None else int(found)
