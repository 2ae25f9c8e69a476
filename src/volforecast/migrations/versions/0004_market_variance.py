"""The market series: market.market_variance, one row per day, refreshed by ingest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_variance",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("log_rv", sa.Double(), nullable=False,
                  comment="mean of ln(range variance in %²)"),
        sa.Column("tickers", sa.Integer(), nullable=False, comment="tickers averaged that day"),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("date", name=op.f("pk_market_variance")),
        schema="market",
        comment="Mean log range variance across tickers, daily.",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("market_variance", schema="market")
