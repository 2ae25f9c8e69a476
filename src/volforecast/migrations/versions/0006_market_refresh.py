"""The market series' refresh mark: market.market_refresh, written with every price change.

A database upgraded from before the mark may hold a series that a killed ingest left stale
(the refresh used to run only at the end of a complete load), so the mark starts at the first
stored price (NULL in an empty database): the next ingest recomputes the whole series once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_refresh",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("since", sa.Date(), nullable=True,
                  comment="earliest day whose prices changed; NULL when the series is current"),
        sa.Column("revision", sa.BigInteger(), nullable=False,
                  comment="price transactions counted"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_market_refresh_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_refresh")),
        schema="market",
        comment="Days of the market series waiting for a refresh.",
    )  # fmt: skip
    schema = "market." if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(
        f"INSERT INTO {schema}market_refresh (id, since, revision, changed_at) "
        f"SELECT 1, MIN(date), 1, CURRENT_TIMESTAMP FROM {schema}stock_prices"
    )


def downgrade() -> None:
    op.drop_table("market_refresh", schema="market")
