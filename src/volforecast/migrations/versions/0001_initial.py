"""Initial schema: market.stock_prices, ml.volatility_predictions, ml.model_metrics.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SCHEMA IF NOT EXISTS market")
        op.execute("CREATE SCHEMA IF NOT EXISTS ml")

    op.create_table(
        "stock_prices",
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False, comment="as traded"),
        sa.Column("high", sa.Double(), nullable=False, comment="as traded"),
        sa.Column("low", sa.Double(), nullable=False, comment="as traded"),
        sa.Column("close", sa.Double(), nullable=False, comment="as traded"),
        sa.Column("adj_close", sa.Double(), nullable=False, comment="split- and dividend-adjusted"),
        sa.Column("volume", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(64), nullable=False, comment="where the row came from"),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("open > 0", name=op.f("ck_stock_prices_open_positive")),
        sa.CheckConstraint("high > 0", name=op.f("ck_stock_prices_high_positive")),
        sa.CheckConstraint("low > 0", name=op.f("ck_stock_prices_low_positive")),
        sa.CheckConstraint("close > 0", name=op.f("ck_stock_prices_close_positive")),
        sa.CheckConstraint("adj_close > 0", name=op.f("ck_stock_prices_adj_close_positive")),
        sa.CheckConstraint("high >= low", name=op.f("ck_stock_prices_high_not_below_low")),
        sa.CheckConstraint(
            "volume IS NULL OR volume >= 0", name=op.f("ck_stock_prices_volume_not_negative")
        ),
        sa.PrimaryKeyConstraint("ticker", "date", name=op.f("pk_stock_prices")),
        schema="market",
        comment="Daily OHLC bars, one row per ticker and date.",
    )

    op.create_table(
        "volatility_predictions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False),
        sa.Column("origin_date", sa.Date(), nullable=False, comment="date of the last close used"),
        sa.Column(
            "step", sa.SmallInteger(), nullable=False, comment="trading days after the origin"
        ),
        sa.Column("forecast_date", sa.Date(), nullable=False),
        sa.Column(
            "predicted_volatility", sa.Double(), nullable=False, comment="daily volatility, %"
        ),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("prediction_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("step >= 1", name=op.f("ck_volatility_predictions_step_positive")),
        sa.CheckConstraint(
            "predicted_volatility > 0",
            name=op.f("ck_volatility_predictions_volatility_positive"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volatility_predictions")),
        sa.UniqueConstraint(
            "ticker",
            "model_type",
            "origin_date",
            "step",
            "model_version",
            name=op.f("uq_volatility_predictions_key"),
        ),
        schema="ml",
        comment="Forecast paths; a re-run for one origin replaces.",
    )
    op.create_index(
        op.f("ix_volatility_predictions_ticker_forecast_date"),
        "volatility_predictions",
        ["ticker", "forecast_date"],
        schema="ml",
    )

    op.create_table(
        "model_metrics",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False),
        sa.Column("metric_name", sa.String(50), nullable=False),
        sa.Column("metric_value", sa.Double(), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_metrics")),
        sa.UniqueConstraint(
            "run_id",
            "ticker",
            "model_type",
            "metric_name",
            name=op.f("uq_model_metrics_key"),
        ),
        schema="ml",
        comment="Evaluation metrics; one row per run and metric.",
    )
    op.create_index(
        op.f("ix_model_metrics_ticker_model_type"),
        "model_metrics",
        ["ticker", "model_type"],
        schema="ml",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_model_metrics_ticker_model_type"), "model_metrics", schema="ml")
    op.drop_table("model_metrics", schema="ml")
    op.drop_index(
        op.f("ix_volatility_predictions_ticker_forecast_date"),
        "volatility_predictions",
        schema="ml",
    )
    op.drop_table("volatility_predictions", schema="ml")
    op.drop_table("stock_prices", schema="market")
    # The schemas stay: other tools may share them, and an empty schema costs nothing.
