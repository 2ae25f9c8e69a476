"""Monitoring: ml.forecast_accuracy, ml.drift_checks and the retraining queue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "forecast_accuracy",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False),
        sa.Column("horizon", sa.SmallInteger(), nullable=False,
                  comment="forecast step, trading days"),
        sa.Column("proxy", sa.String(10), nullable=False, comment="range or squared"),
        sa.Column("as_of_date", sa.Date(), nullable=False,
                  comment="last forecast date in the window"),
        sa.Column("n_forecasts", sa.Integer(), nullable=False),
        sa.Column("rmse_vol_pct", sa.Double(), nullable=False, comment="daily volatility, %"),
        sa.Column("mae_vol_pct", sa.Double(), nullable=False, comment="daily volatility, %"),
        sa.Column("qlike", sa.Double(), nullable=True,
                  comment="on variances; NULL when the proxy is zero throughout"),
        sa.Column("computed_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_accuracy")),
        sa.UniqueConstraint("ticker", "model_type", "horizon", "proxy", "as_of_date",
                            name=op.f("uq_forecast_accuracy_key")),
        schema="ml",
        comment="Stored forecasts against realized volatility.",
    )  # fmt: skip
    op.create_index(op.f("ix_forecast_accuracy_as_of_date"), "forecast_accuracy",
                    ["as_of_date"], schema="ml")  # fmt: skip
    op.create_table(
        "drift_checks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False),
        sa.Column("detector", sa.String(20), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("statistic", sa.Double(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("alert", sa.Boolean(), nullable=False,
                  comment="the onset of a firing: an alert"),
        sa.Column("detail", sa.Text(), nullable=False, comment="JSON: detector-specific figures"),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_checks")),
        sa.UniqueConstraint("ticker", "model_type", "detector", "observed_on",
                            name=op.f("uq_drift_checks_key")),
        schema="ml",
        comment="Drift detector statistics and alerts.",
    )  # fmt: skip
    op.create_index(op.f("ix_drift_checks_observed_on"), "drift_checks", ["observed_on"],
                    schema="ml")  # fmt: skip
    op.create_table(
        "retrain_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column(
            "requested_on",
            sa.Date(),
            nullable=False,
            comment="the day of the latest alert it answers",
        ),
        sa.Column("reason", sa.Text(), nullable=False, comment="the alerts that asked for it"),
        sa.Column("status", sa.String(10), nullable=False, comment="pending or done"),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("done_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_requests")),
        sa.UniqueConstraint("ticker", "requested_on", name=op.f("uq_retrain_requests_key")),
        schema="ml",
        comment="The monitor's retraining queue.",
    )
    op.create_index(op.f("ix_retrain_requests_status"), "retrain_requests", ["status"], schema="ml")


def downgrade() -> None:
    op.drop_index(op.f("ix_retrain_requests_status"), "retrain_requests", schema="ml")
    op.drop_table("retrain_requests", schema="ml")
    op.drop_index(op.f("ix_drift_checks_observed_on"), "drift_checks", schema="ml")
    op.drop_table("drift_checks", schema="ml")
    op.drop_index(op.f("ix_forecast_accuracy_as_of_date"), "forecast_accuracy", schema="ml")
    op.drop_table("forecast_accuracy", schema="ml")
