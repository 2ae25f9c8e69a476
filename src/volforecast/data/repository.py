"""Reads and idempotent writes of ``market.stock_prices``.

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

import datetime as dt
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import cast

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from volforecast.data.db import writing
from volforecast.data.sources import RAW_COLUMNS
from volforecast.data.tables import (
    MarketRefresh,
    MarketVariance,
    ModelMetric,
    StockPrice,
    VolatilityPrediction,
)

log = logging.getLogger(__name__)

PRICES = StockPrice.__table__
STORED_COLUMNS = (
    "ticker",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "source",
    "ingested_at",
)
_VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "source")


@dataclass(frozen=True)
class UpsertCounts:
    """What one merge did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


@dataclass(frozen=True)
class TickerSummary:
    """Stored coverage of one ticker."""

    ticker: str
    rows: int
    first_date: dt.date
    last_date: dt.date


def _stage_table() -> Table:
    columns = [Column(c.name, c.type) for c in PRICES.columns if c.name in STORED_COLUMNS]
    return Table(
        "volforecast_stage_prices",
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


class PriceRepository:
    """Prices in and out of ``market.stock_prices``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        stage = _stage_table()
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
                mark_market_stale(connection, _as_date(first_changed), now=ingested_at)
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
            select(
                PRICES.c.ticker,
                func.count(),
                func.min(PRICES.c.date),
                func.max(PRICES.c.date),
            )
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
            return {str(t): _as_date(d) for t, d in connection.execute(query)}

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
            result = connection.execute(query)
            keys = list(result.keys())
            # Plain tuples: pandas probes SQLAlchemy rows attribute by attribute, slowly.
            frame = pd.DataFrame.from_records([tuple(row) for row in result], columns=keys)
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        for column in ("open", "high", "low", "close", "adj_close", "volume"):
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
            *(rows[c].astype("float64").tolist() for c in ("open", "high", "low", "close")),
            rows["adj_close"].astype("float64").tolist(),
            [None if v is None else int(v) for v in volume],
            rows["source"].astype(str).tolist(),
            [stamp.strftime("%Y-%m-%d %H:%M:%S.%f")] * len(rows),
            strict=True,
        )
    )
    placeholders = ", ".join("?" * len(STORED_COLUMNS))
    cursor = connection.connection.cursor()
    cursor.executemany(
        f"INSERT INTO {stage.name} ({', '.join(STORED_COLUMNS)}) VALUES ({placeholders})",
        values,
    )


def _copy_into(connection: Connection, stage: Table, rows: pd.DataFrame) -> None:
    # Arrow writes CSV in C++ with round-trip float precision, several times faster than
    # pandas; empty fields are NULL in PostgreSQL's CSV format.
    buffer = io.BytesIO()
    pa_csv.write_csv(
        pa.Table.from_pandas(rows, preserve_index=False),
        buffer,
        write_options=pa_csv.WriteOptions(include_header=False),
    )
    cursor = connection.connection.cursor()
    columns = ", ".join(rows.columns)
    with cursor.copy(f"COPY {stage.name} ({columns}) FROM STDIN (FORMAT CSV)") as copy:
        copy.write(buffer.getbuffer())


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
    counts = UpsertCounts(inserted, written - inserted, staged - written)
    return counts, first


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
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    source = select(*[stage.c[c] for c in STORED_COLUMNS]).where(true())
    insert = dialect.insert(PRICES).from_select(list(STORED_COLUMNS), source)
    changed = or_(*[PRICES.c[c].is_distinct_from(insert.excluded[c]) for c in _VALUE_COLUMNS])
    merge: Insert = insert.on_conflict_do_update(
        index_elements=[PRICES.c.ticker, PRICES.c.date],
        set_={c: insert.excluded[c] for c in (*_VALUE_COLUMNS, "ingested_at")},
        where=changed,
    )
    return merge


METRICS = ModelMetric.__table__


@dataclass(frozen=True)
class MetricRow:
    """One evaluation figure of one model for one ticker (a row of ``ml.model_metrics``)."""

    ticker: str
    model_type: str
    metric_name: str
    metric_value: float
    run_id: str
    model_version: str | None


class MetricRepository:
    """Evaluation metrics in ``ml.model_metrics``; writing a run's metrics again replaces them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, rows: Sequence[MetricRow], *, created_at: dt.datetime) -> int:
        """Insert or replace rows by run, ticker, model type and metric; returns the count."""
        if not rows:
            return 0
        values = [
            {
                "ticker": r.ticker,
                "model_type": r.model_type,
                "metric_name": r.metric_name,
                "metric_value": float(r.metric_value),
                "run_id": r.run_id,
                "model_version": r.model_version,
                "created_at": created_at,
            }
            for r in rows
        ]
        with self.engine.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(METRICS)
            statement = statement.on_conflict_do_update(
                index_elements=["run_id", "ticker", "model_type", "metric_name"],
                set_={
                    c: statement.excluded[c]
                    for c in ("metric_value", "model_version", "created_at")
                },
            )
            connection.execute(statement, values)
        return len(values)

    def load(
        self, *, tickers: Sequence[str] | None = None, run_id: str | None = None
    ) -> pd.DataFrame:
        """Stored metrics, newest first."""
        query = select(METRICS).order_by(METRICS.c.created_at.desc(), METRICS.c.id)
        if tickers is not None:
            query = query.where(METRICS.c.ticker.in_(list(tickers)))
        if run_id is not None:
            query = query.where(METRICS.c.run_id == run_id)
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))


MARKET = cast("Table", MarketVariance.__table__)
MARKET_REFRESH = cast("Table", MarketRefresh.__table__)


@dataclass(frozen=True)
class StaleMark:
    """The market series is stale from ``since`` on; ``revision`` counts the price changes."""

    since: dt.date
    revision: int


def mark_market_stale(connection: Connection, since: dt.date, *, now: dt.datetime) -> None:
    """Lower the refresh mark to ``since`` in the caller's transaction (the price write's)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(MARKET_REFRESH).values(id=1, since=since, revision=1, changed_at=now)
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


class MarketRepository:
    """The market series in ``market.market_variance`` (see :class:`MarketVariance`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        computed_at : datetime.datetime
            Stamp of the rows.
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
        return None if row is None else StaleMark(_as_date(row.since), int(row.revision))

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


def _as_date(value: dt.date | str) -> dt.date:
    # SQLite hands back aggregates of DATE columns as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


PREDICTIONS = VolatilityPrediction.__table__
PREDICTION_KEY = ("ticker", "model_type", "origin_date", "step", "model_version")


@dataclass(frozen=True)
class PredictionRow:
    """One step of one forecast path (a row of ``ml.volatility_predictions``)."""

    ticker: str
    model_type: str
    origin_date: dt.date
    step: int
    forecast_date: dt.date
    predicted_volatility: float
    """Daily volatility in percent."""
    model_version: str
    run_id: str | None
    prediction_timestamp: dt.datetime


@dataclass(frozen=True)
class PredictionPage:
    """Stored predictions matching a query, one page of them, and how many match in all."""

    rows: list[PredictionRow]
    total: int


class PredictionRepository:
    """Forecast paths in ``ml.volatility_predictions``.

    A row is keyed by ticker, model type, origin, step and model version: storing the same
    forecast again replaces it, so a retried write or a re-run job never duplicates a row.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, rows: Sequence[PredictionRow]) -> int:
        """Insert or replace rows by their key; returns how many were written."""
        # The last of several rows with one key wins, as it would in one statement per row.
        unique = {tuple(getattr(r, c) for c in PREDICTION_KEY): r for r in rows}
        if not unique:
            return 0
        values = [vars(r) for r in unique.values()]
        with self.engine.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(PREDICTIONS)
            statement = statement.on_conflict_do_update(
                index_elements=list(PREDICTION_KEY),
                set_={
                    c: statement.excluded[c]
                    for c in ("forecast_date", "predicted_volatility", "run_id",
                              "prediction_timestamp")
                },
            )  # fmt: skip
            connection.execute(statement, values)
        return len(values)

    def find(
        self,
        ticker: str,
        *,
        model_type: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> PredictionPage:
        """Stored predictions of ``ticker`` whose forecast date is in ``[start, end]``.

        Newest origin first, then by model type and step.
        """
        where = [PREDICTIONS.c.ticker == ticker]
        if model_type is not None:
            where.append(PREDICTIONS.c.model_type == model_type)
        if start is not None:
            where.append(PREDICTIONS.c.forecast_date >= start)
        if end is not None:
            where.append(PREDICTIONS.c.forecast_date <= end)
        columns = [PREDICTIONS.c[f.name] for f in fields(PredictionRow)]
        query = (
            select(*columns)
            .where(*where)
            .order_by(
                PREDICTIONS.c.origin_date.desc(),
                PREDICTIONS.c.model_type,
                PREDICTIONS.c.model_version.desc(),
                PREDICTIONS.c.step,
            )
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(PREDICTIONS).where(*where)
        with self.engine.connect() as connection:
            total = int(connection.execute(count).scalar_one())
            rows = [PredictionRow(**row._asdict()) for row in connection.execute(query)]
        return PredictionPage(rows, total)

    def frame(
        self,
        tickers: Sequence[str],
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        steps: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Stored rows of ``tickers`` with a forecast date in ``[start, end]``, as a frame."""
        where: list[ColumnElement[bool]] = [PREDICTIONS.c.ticker.in_(list(tickers))]
        if start is not None:
            where.append(PREDICTIONS.c.forecast_date >= start)
        if end is not None:
            where.append(PREDICTIONS.c.forecast_date <= end)
        if steps is not None:
            where.append(PREDICTIONS.c.step.in_(list(steps)))
        columns = [PREDICTIONS.c[f.name] for f in fields(PredictionRow)]
        with self.engine.connect() as connection:
            result = connection.execute(select(*columns).where(*where))
            frame = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
        if frame.empty:
            return frame
        frame["forecast_date"] = frame["forecast_date"].map(_as_date)
        return frame
