"""Prices: reads and idempotent writes of ``market.stock_prices``.

Writes stage a chunk in a temporary table (``COPY`` on PostgreSQL, a bulk insert on SQLite)
and merge it with one ``INSERT … SELECT … ON CONFLICT (ticker, date) DO UPDATE``. A row whose
values did not change is not touched, so loading the same file twice writes nothing the
second time, and every stored row outlives a failed load. The same transaction marks the
market series stale from the earliest day it changed (``market.market_refresh``).

Each merge counts what it wrote itself, even with another load merging the same rows at the
same moment: PostgreSQL's merge returns its rows (``xmax = 0`` for an insert), and on SQLite
the transaction takes the write lock before it counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass
from typing import Any, cast

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql as psql
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Select,
    String,
    Table,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from volforecast.data.db import Repository, as_date, writing
from volforecast.data.repositories.market import mark_market_stale
from volforecast.data.sources import PRICE_COLUMNS, RAW_COLUMNS
from volforecast.data.tables import StockPrice
from volforecast.data.upsert import upsert_statement

PRICES = cast("Table", StockPrice.__table__)
_VALUE_COLUMNS = (*PRICE_COLUMNS, "volume", "source")
STORED_COLUMNS = ("ticker", "date", *_VALUE_COLUMNS, "ingested_at")


@dataclass(frozen=True)
class UpsertCounts:
    """What one merge did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class TickerSummary:
    """Stored coverage of one ticker."""

    ticker: str
    rows: int
    first_date: dt.date
    last_date: dt.date


class PriceRepository(Repository):
    """Prices in and out of ``market.stock_prices``."""

    def upsert(self, frame: pd.DataFrame, *, ingested_at: dt.datetime) -> UpsertCounts:
        """Merge validated rows in one transaction.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows that passed the quality gate, in the raw price layout; one row per key.
        ingested_at : datetime.datetime
            Stamp for rows that are inserted or changed.
        """
        if frame.empty:
            return UpsertCounts()
        rows = frame.assign(
            date=pd.to_datetime(frame["date"]).dt.date,
            volume=frame["volume"].round().astype("Int64"),
            ingested_at=ingested_at,
        ).loc[:, list(STORED_COLUMNS)]
        stage = Table(
            "volforecast_stage_prices",
            MetaData(),
            *(Column(c.name, c.type) for c in PRICES.columns if c.name in STORED_COLUMNS),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        first_changed: dt.date | str | None
        with writing(self.engine) as connection:
            stage.create(connection)
            if connection.dialect.name == "postgresql":
                _copy_into(connection, stage, rows)
                counts, first_changed = _merge_returning(connection, stage, len(rows))
            else:
                _bulk_insert_sqlite(connection, stage, rows)
                counts, first_changed = _count_and_merge(connection, stage, len(rows))
                stage.drop(connection)
            if first_changed is not None:
                mark_market_stale(connection, as_date(first_changed), now=ingested_at)
        return counts

    def count(self, tickers: Sequence[str] | None = None) -> int:
        """Stored rows, for some tickers or all."""
        query = select(func.count()).select_from(PRICES)
        if tickers is not None:
            query = query.where(PRICES.c.ticker.in_(list(tickers)))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def summary(self) -> list[TickerSummary]:
        """Rows and date range of every stored ticker, by ticker."""
        query = (
            select(PRICES.c.ticker, func.count(), func.min(PRICES.c.date), func.max(PRICES.c.date))
            .group_by(PRICES.c.ticker)
            .order_by(PRICES.c.ticker)
        )
        with self.engine.connect() as connection:
            return [TickerSummary(t, int(n), lo, hi) for t, n, lo, hi in connection.execute(query)]

    def latest_dates(self, tickers: Sequence[str] | None = None) -> dict[str, dt.date]:
        """The date of each stored ticker's latest close (of every ticker by default)."""
        query = select(PRICES.c.ticker, func.max(PRICES.c.date)).group_by(PRICES.c.ticker)
        if tickers is not None:
            query = query.where(PRICES.c.ticker.in_(list(tickers)))
        with self.engine.connect() as connection:
            return {str(t): as_date(d) for t, d in connection.execute(query)}

    def load(
        self,
        tickers: Sequence[str] | None = None,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pd.DataFrame:
        """Stored prices in the raw price layout, sorted by ticker and date.

        ``split_coefficient`` is 1: stored prices carry their adjustment in ``adj_close``.
        """
        # The date comes back as the driver gives it (text on SQLite) and is parsed once, by
        # pandas, for the whole column: parsing it row by row cost more than the query.
        columns = [
            type_coerce(PRICES.c[c], String).label(c) if c == "date" else PRICES.c[c]
            for c in STORED_COLUMNS
            if c != "ingested_at"
        ]
        query = select(*columns).order_by(PRICES.c.ticker, PRICES.c.date)
        if tickers is not None:
            query = query.where(PRICES.c.ticker.in_(list(tickers)))
        if start is not None:
            query = query.where(PRICES.c.date >= start)
        if end is not None:
            query = query.where(PRICES.c.date <= end)
        with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                frame = _copy_out(connection, query)
            else:
                result = connection.execute(query)
                frame = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        for column in (*PRICE_COLUMNS, "volume"):
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        frame["ticker"] = frame["ticker"].astype("string")
        return frame.assign(split_coefficient=1.0).loc[:, list(RAW_COLUMNS)]


def _bulk_insert_sqlite(connection: Connection, stage: Table, rows: pd.DataFrame) -> None:
    # Plain sqlite3 executemany on tuples: SQLAlchemy's per-row parameter processing would
    # take most of the load's time. Values are written in the text forms SQLAlchemy's Date and
    # DateTime types use on SQLite, so reads through SQLAlchemy see ordinary dates.
    stamp = pd.Timestamp(rows["ingested_at"].iloc[0]).tz_convert("UTC").tz_localize(None)
    volume = rows["volume"].astype(object).where(rows["volume"].notna(), None)
    values = list(
        zip(
            rows["ticker"].astype(str).tolist(),
            [day.isoformat() for day in rows["date"]],
            *(rows[c].astype("float64").tolist() for c in PRICE_COLUMNS),
            [None if v is None else int(v) for v in volume],
            rows["source"].astype(str).tolist(),
            [stamp.strftime("%Y-%m-%d %H:%M:%S.%f")] * len(rows),
            strict=True,
        )
    )
    placeholders = ", ".join("?" * len(STORED_COLUMNS))
    cursor = connection.connection.cursor()
    cursor.executemany(
        f"INSERT INTO {stage.name} ({', '.join(STORED_COLUMNS)}) VALUES ({placeholders})", values
    )


@contextlib.contextmanager
def _as_sqlalchemy_errors(statement: str) -> Iterator[None]:
    """The driver's errors on a raw cursor, raised as SQLAlchemy raises them on its own.

    ``COPY`` runs on psycopg's cursor, outside SQLAlchemy: without this a server lost mid-copy
    would escape ``reachable`` and the API's handlers as a 500 instead of a 503.
    """
    try:
        yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _copy_into(connection: Connection, stage: Table, rows: pd.DataFrame) -> None:
    # Arrow writes CSV in C++ with round-trip float precision, several times faster than
    # pandas; empty fields are NULL in PostgreSQL's CSV format. A column with one value for
    # the whole chunk (the load's timestamp, most often its source) is not sent on every row:
    # it becomes the staging column's default, which halved what PostgreSQL had to parse.
    cursor = connection.connection.cursor()
    sent = list(rows.columns)
    for column in ("source", "ingested_at"):
        values = rows[column].unique()
        if len(values) == 1:
            value = values[0]
            text_value = pd.Timestamp(value).isoformat() if column == "ingested_at" else value
            default = psql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                psql.Identifier(stage.name), psql.Identifier(column), psql.Literal(str(text_value))
            )
            with _as_sqlalchemy_errors(f"ALTER TABLE {stage.name}"):
                cursor.execute(default)
            sent.remove(column)
    buffer = io.BytesIO()
    pa_csv.write_csv(
        pa.Table.from_pandas(rows.loc[:, sent], preserve_index=False),
        buffer,
        write_options=pa_csv.WriteOptions(include_header=False),
    )
    statement = f"COPY {stage.name} ({', '.join(sent)}) FROM STDIN (FORMAT CSV)"
    with _as_sqlalchemy_errors(statement), cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())


def _copy_out(connection: Connection, query: Select[Any]) -> pd.DataFrame:
    """The rows of ``query`` through ``COPY … TO STDOUT``, parsed by arrow.

    Reading 1.7 million prices row by row through the driver took six seconds; as CSV
    parsed in C++ it takes a fraction of that. The query's values are bound as literals by
    SQLAlchemy's own quoting (a COPY takes no parameters).
    """
    sql = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    buffer = io.BytesIO()
    statement = f"COPY ({sql}) TO STDOUT (FORMAT CSV, HEADER)"
    with _as_sqlalchemy_errors(statement):
        cursor = connection.connection.cursor()
        cursor.execute("SET LOCAL DateStyle = ISO")  # the text form pandas parses below
        with cursor.copy(statement) as copy:
            for block in copy:
                buffer.write(block)
    types = {"ticker": pa.string(), "date": pa.string(), "source": pa.string(),
             "volume": pa.float64(), **dict.fromkeys(PRICE_COLUMNS, pa.float64())}  # fmt: skip
    buffer.seek(0)
    table = pa_csv.read_csv(buffer, convert_options=pa_csv.ConvertOptions(column_types=types))
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _merge_returning(
    connection: Connection, stage: Table, staged: int
) -> tuple[UpsertCounts, dt.date | str | None]:
    # The rows the merge wrote, as it wrote them: a concurrent load's rows are its own.
    merged = (
        _merge_statement(connection, stage)
        .returning(PRICES.c.date, (literal_column("xmax") == text("'0'::xid")).label("new"))
        .cte("merged")
    )
    inserted, written, first = connection.execute(
        select(func.count().filter(merged.c.new), func.count(), func.min(merged.c.date))
    ).one()
    return UpsertCounts(inserted, written - inserted, staged - written), first


def _count_and_merge(
    connection: Connection, stage: Table, staged: int
) -> tuple[UpsertCounts, dt.date | str | None]:
    # Under the write lock taken at BEGIN IMMEDIATE, nothing can change between count and merge.
    same_key = (PRICES.c.ticker == stage.c.ticker) & (PRICES.c.date == stage.c.date)
    changed = or_(*[PRICES.c[c].is_distinct_from(stage.c[c]) for c in _VALUE_COLUMNS])
    existing, updated, first = connection.execute(
        select(
            func.count(PRICES.c.ticker),
            func.count(case((PRICES.c.ticker.is_not(None) & changed, 1))),
            func.min(case((changed, stage.c.date))),
        )
        .select_from(stage)
        .outerjoin(PRICES, same_key)
    ).one()
    connection.execute(_merge_statement(connection, stage))
    return UpsertCounts(staged - existing, updated, existing - updated), first


def _merge_statement(connection: Connection, stage: Table) -> Insert:
    source = select(*[stage.c[c] for c in STORED_COLUMNS]).where(true())
    key, columns = ("ticker", "date"), (*_VALUE_COLUMNS, "ingested_at")
    merge = upsert_statement(connection, PRICES, key, columns, changed=_VALUE_COLUMNS)
    return merge.from_select(list(STORED_COLUMNS), source)
