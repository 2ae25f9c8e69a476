"""Database tables: the price input contract and the model outputs.

On PostgreSQL the tables live in the schemas ``market`` and ``ml``; SQLite has no schemas,
so there the engine maps both to the main database (see :mod:`volforecast.data.db`). Floats
are double precision on both: every consumer computes in float64 anyway, and exact decimals
would only slow the 1.7-million-row loads down.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MARKET_SCHEMA = "market"
ML_SCHEMA = "ml"
SCHEMAS = (MARKET_SCHEMA, ML_SCHEMA)

TICKER_LENGTH = 16

# Natural keys: each table's unique constraint, and the key its repository upserts on.
PREDICTION_KEY = ("ticker", "model_type", "origin_date", "step", "model_version")
# served_as is not in PREDICTION_KEY: a version's forecast of one origin is stored once, and
# keeps what it was first served as (PredictionRepository.upsert).
SERVED_AS = ("production", "challenger")
"""What a stored forecast was served as: ``ml.volatility_predictions.served_as``."""
METRIC_KEY = ("run_id", "ticker", "model_type", "metric_name")
ACCURACY_KEY = ("ticker", "model_type", "horizon", "proxy", "as_of_date")
CHECK_KEY = ("ticker", "model_type", "detector", "observed_on")
RISK_KEY = ("ticker", "model_type", "origin_date", "days", "level", "model_version")
TERM_KEY = ("ticker", "model_type", "origin_date", "days", "model_version")

# Named constraints let Alembic alter and drop them the same way on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only gives a column an auto-increment rowid when it is declared INTEGER.
_BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StockPrice(Base):
    """One daily bar of one ticker: the input contract every model reads.

    Prices are finite as well as positive: migration 0005 adds that check in each database's
    own spelling (a constraint on PostgreSQL, triggers on SQLite), so it is not declared here.
    """

    __tablename__ = "stock_prices"
    __table_args__ = (
        CheckConstraint("open > 0", name="open_positive"),
        CheckConstraint("high > 0", name="high_positive"),
        CheckConstraint("low > 0", name="low_positive"),
        CheckConstraint("close > 0", name="close_positive"),
        CheckConstraint("adj_close > 0", name="adj_close_positive"),
        CheckConstraint("high >= low", name="high_not_below_low"),
        CheckConstraint("volume IS NULL OR volume >= 0", name="volume_not_negative"),
        {"schema": MARKET_SCHEMA, "comment": "Daily OHLC bars, one row per ticker and date."},
    )

    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Double, comment="as traded")
    high: Mapped[float] = mapped_column(Double, comment="as traded")
    low: Mapped[float] = mapped_column(Double, comment="as traded")
    close: Mapped[float] = mapped_column(Double, comment="as traded")
    adj_close: Mapped[float] = mapped_column(Double, comment="split- and dividend-adjusted")
    volume: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(64), comment="where the row came from")
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MarketVariance(Base):
    """The market's log range variance on one day: what HAR's market term reads.

    Derived from ``stock_prices`` (:func:`volforecast.core.features.market_log_rv`) and
    refreshed by every ingest, so a forecast for one ticker need not read every ticker.
    """

    __tablename__ = "market_variance"
    __table_args__ = (
        {"schema": MARKET_SCHEMA, "comment": "Mean log range variance across tickers, daily."},
    )

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    log_rv: Mapped[float] = mapped_column(Double, comment="mean of ln(range variance in %²)")
    tickers: Mapped[int] = mapped_column(Integer, comment="tickers averaged that day")
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MarketRefresh(Base):
    """Where the market series is stale from: one row, ``since`` NULL when it is not.

    Every price transaction that inserts or changes rows lowers ``since`` to its earliest
    changed day and counts a ``revision`` in the same transaction, so a load killed before
    its refresh leaves the mark behind. The refresh that recomputes the series writes it and
    clears ``since`` in one transaction, and only when ``revision`` is still the one it read:
    prices that changed meanwhile leave the mark for the next refresh. The row is never
    deleted, so a revision is never counted twice.
    """

    __tablename__ = "market_refresh"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        {"schema": MARKET_SCHEMA, "comment": "Days of the market series waiting for a refresh."},
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    since: Mapped[dt.date | None] = mapped_column(
        Date, comment="earliest day whose prices changed; NULL when the series is current"
    )
    revision: Mapped[int] = mapped_column(BigInteger, comment="price transactions counted")
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class VolatilityPrediction(Base):
    """One step of one stored forecast path."""

    __tablename__ = "volatility_predictions"
    __table_args__ = (
        UniqueConstraint(*PREDICTION_KEY, name="uq_volatility_predictions_key"),
        CheckConstraint("step >= 1", name="step_positive"),
        CheckConstraint("predicted_volatility > 0", name="volatility_positive"),
        Index(None, "ticker", "forecast_date"),
        {"schema": ML_SCHEMA, "comment": "Forecast paths; a re-run for one origin replaces."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    origin_date: Mapped[dt.date] = mapped_column(Date, comment="date of the last close used")
    step: Mapped[int] = mapped_column(SmallInteger, comment="trading days after the origin")
    forecast_date: Mapped[dt.date] = mapped_column(Date)
    predicted_volatility: Mapped[float] = mapped_column(Double, comment="daily volatility, %")
    model_version: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str | None] = mapped_column(String(100))
    prediction_timestamp: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    served_as: Mapped[str] = mapped_column(
        String(20),
        server_default=SERVED_AS[0],
        comment="production, or challenger: a waiting challenger's live A/B forecast",
    )


class RiskForecast(Base):
    """A production model's VaR and expected shortfall from one close, at one level and horizon.

    Both are losses over ``days`` trading days, as positive percent log returns, from the
    model's own tails (:mod:`volforecast.core.tail_risk`).
    """

    __tablename__ = "risk_forecasts"
    __table_args__ = (
        UniqueConstraint(*RISK_KEY, name="uq_risk_forecasts_key"),
        CheckConstraint("days >= 1", name="days_positive"),
        CheckConstraint("level > 0.5 AND level < 1", name="level_in_tail"),
        # A bound, not only a sign: PostgreSQL ranks NaN and infinity above every number.
        CheckConstraint("var_pct > 0 AND var_pct < 1e300", name="var_finite_positive"),
        CheckConstraint("es_pct >= var_pct AND es_pct < 1e300", name="es_finite_not_below_var"),
        Index(None, "ticker", "origin_date"),
        {"schema": ML_SCHEMA, "comment": "VaR and ES; a re-run of a version and origin replaces."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    origin_date: Mapped[dt.date] = mapped_column(Date, comment="date of the last close used")
    days: Mapped[int] = mapped_column(SmallInteger, comment="horizon, trading days")
    level: Mapped[float] = mapped_column(Double, comment="confidence level, e.g. 0.99")
    var_pct: Mapped[float] = mapped_column(Double, comment="value at risk, % log return")
    es_pct: Mapped[float] = mapped_column(Double, comment="expected shortfall, % log return")
    method: Mapped[str] = mapped_column(Text, comment="how the tails were made")
    model_version: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str | None] = mapped_column(String(100))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TermStructurePoint(Base):
    """A production model's annualised volatility over the next ``days`` from one close."""

    __tablename__ = "term_structures"
    __table_args__ = (
        UniqueConstraint(*TERM_KEY, name="uq_term_structures_key"),
        CheckConstraint("days >= 1", name="days_positive"),
        CheckConstraint("vol_ann_pct > 0 AND vol_ann_pct < 1e300", name="vol_finite_positive"),
        Index(None, "ticker", "origin_date"),
        {"schema": ML_SCHEMA, "comment": "Annualised volatility to a year (V-Lab's points)."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    origin_date: Mapped[dt.date] = mapped_column(Date, comment="date of the last close used")
    days: Mapped[int] = mapped_column(SmallInteger, comment="horizon, trading days")
    vol_ann_pct: Mapped[float] = mapped_column(
        Double, comment="sqrt(252 * mean daily variance over the horizon), %"
    )
    model_version: Mapped[str] = mapped_column(String(20))
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ModelMetric(Base):
    """One metric of one model evaluation."""

    __tablename__ = "model_metrics"
    __table_args__ = (
        UniqueConstraint(*METRIC_KEY, name="uq_model_metrics_key"),
        Index(None, "ticker", "model_type"),
        {"schema": ML_SCHEMA, "comment": "Evaluation metrics; one row per run and metric."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    metric_name: Mapped[str] = mapped_column(String(50))
    metric_value: Mapped[float] = mapped_column(Double)
    run_id: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ModelPromotion(Base):
    """One move of a registry alias: the audit trail of what served when.

    The registry holds only where an alias points now; this log keeps every move, so the
    version that served on any past date can be answered, and a rollback knows where to go.
    """

    __tablename__ = "model_promotions"
    __table_args__ = (
        # The sequence is what makes concurrent promotions safe: two runs that read the same
        # last entry cannot both append the next one.
        UniqueConstraint("registered_model", "seq", name="uq_model_promotions_key"),
        Index(None, "registered_model", "alias", "created_at"),
        {"schema": ML_SCHEMA, "comment": "Every registry alias move, append-only."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    registered_model: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(Integer, comment="1, 2, ... per registered model")
    alias: Mapped[str] = mapped_column(String(40), comment="production or challenger")
    action: Mapped[str] = mapped_column(String(20), comment="promote, reject, rollback, ...")
    version: Mapped[str | None] = mapped_column(
        String(20), comment="where the alias points after the move; NULL when removed"
    )
    previous_version: Mapped[str | None] = mapped_column(String(20))
    candidate: Mapped[str | None] = mapped_column(
        String(20), comment="the version a training run judged; NULL for moves by hand"
    )
    reason: Mapped[str] = mapped_column(Text)
    metrics: Mapped[str] = mapped_column(Text, comment="JSON: the figures the decision used")
    actor: Mapped[str] = mapped_column(String(100), comment="user@host or the job that moved it")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ModelChampion(Base):
    """The family that serves one ticker when a request names no model, and why.

    Each change of champion is also appended to ``ml.model_promotions`` (alias ``champion``);
    this row holds the latest decision's figures, whether or not it changed anything.
    """

    __tablename__ = "model_champions"
    __table_args__ = ({"schema": ML_SCHEMA, "comment": "Each ticker's champion family."},)

    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH), primary_key=True)
    model_type: Mapped[str] = mapped_column(String(20), comment="the champion, e.g. HAR")
    since: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), comment="when it became the champion"
    )
    decided_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), comment="the latest decision, changed or not"
    )
    reason: Mapped[str] = mapped_column(Text)
    metrics: Mapped[str] = mapped_column(Text, comment="JSON: the figures the decision used")


class ForecastAccuracy(Base):
    """Rolling accuracy of one model's stored forecasts of one ticker, at one horizon."""

    __tablename__ = "forecast_accuracy"
    __table_args__ = (
        UniqueConstraint(*ACCURACY_KEY, name="uq_forecast_accuracy_key"),
        Index(None, "as_of_date"),
        {"schema": ML_SCHEMA, "comment": "Stored forecasts against realized volatility."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    horizon: Mapped[int] = mapped_column(SmallInteger, comment="forecast step, trading days")
    proxy: Mapped[str] = mapped_column(String(10), comment="range or squared")
    as_of_date: Mapped[dt.date] = mapped_column(Date, comment="last forecast date in the window")
    n_forecasts: Mapped[int] = mapped_column(Integer)
    rmse_vol_pct: Mapped[float] = mapped_column(Double, comment="daily volatility, %")
    mae_vol_pct: Mapped[float] = mapped_column(Double, comment="daily volatility, %")
    qlike: Mapped[float | None] = mapped_column(
        Double, comment="on variances; NULL when the proxy is zero throughout"
    )
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class DriftCheck(Base):
    """One detector's verdict for one ticker and model on one day.

    The monitor stores every check of the day it runs for (the dashboard's drift
    statistics) and every alert onset since the model was trained (``alert`` true).
    """

    __tablename__ = "drift_checks"
    __table_args__ = (
        UniqueConstraint(*CHECK_KEY, name="uq_drift_checks_key"),
        Index(None, "observed_on"),
        {"schema": ML_SCHEMA, "comment": "Drift detector statistics and alerts."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    model_type: Mapped[str] = mapped_column(String(20))
    detector: Mapped[str] = mapped_column(String(20))
    observed_on: Mapped[dt.date] = mapped_column(Date)
    statistic: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    fired: Mapped[bool] = mapped_column(Boolean)
    alert: Mapped[bool] = mapped_column(Boolean, comment="the onset of a firing: an alert")
    detail: Mapped[str] = mapped_column(Text, comment="JSON: detector-specific figures")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RetrainRequest(Base):
    """A ticker queued for retraining by the monitor, and whether training took it up."""

    __tablename__ = "retrain_requests"
    __table_args__ = (
        UniqueConstraint("ticker", "requested_on", name="uq_retrain_requests_key"),
        Index(None, "status"),
        {"schema": ML_SCHEMA, "comment": "The monitor's retraining queue."},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    ticker: Mapped[str] = mapped_column(String(TICKER_LENGTH))
    requested_on: Mapped[dt.date] = mapped_column(
        Date, comment="the day of the latest alert it answers"
    )
    reason: Mapped[str] = mapped_column(Text, comment="the alerts that asked for it")
    status: Mapped[str] = mapped_column(String(10), comment="pending or done")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
