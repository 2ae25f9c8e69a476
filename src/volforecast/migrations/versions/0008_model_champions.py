"""Each ticker's champion family: ml.model_champions.

A pooled model serves every ticker under one registered name, so an MLflow alias cannot say
which family serves AAPL by default; this table does, and its changes are logged in
ml.model_promotions under the alias ``champion``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_champions",
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False, comment="the champion, e.g. HAR"),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False,
                  comment="when it became the champion"),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False,
                  comment="the latest decision, changed or not"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False,
                  comment="JSON: the figures the decision used"),
        sa.PrimaryKeyConstraint("ticker", name=op.f("pk_model_champions")),
        schema="ml",
        comment="Each ticker's champion family.",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("model_champions", schema="ml")
