"""The promotion log: ml.model_promotions, one row per registry alias move.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_promotions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("registered_model", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, comment="1, 2, ... per registered model"),
        sa.Column("alias", sa.String(40), nullable=False, comment="production or challenger"),
        sa.Column(
            "action", sa.String(20), nullable=False, comment="promote, reject, rollback, ..."
        ),
        sa.Column(
            "version",
            sa.String(20),
            nullable=True,
            comment="where the alias points after the move; NULL when removed",
        ),
        sa.Column("previous_version", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "metrics", sa.Text(), nullable=False, comment="JSON: the figures the decision used"
        ),
        sa.Column(
            "actor", sa.String(100), nullable=False, comment="user@host or the job that moved it"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_promotions")),
        sa.UniqueConstraint("registered_model", "seq", name=op.f("uq_model_promotions_key")),
        schema="ml",
        comment="Every registry alias move, append-only.",
    )
    op.create_index(
        op.f("ix_model_promotions_registered_model_alias_created_at"),
        "model_promotions",
        ["registered_model", "alias", "created_at"],
        schema="ml",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_model_promotions_registered_model_alias_created_at"),
        "model_promotions",
        schema="ml",
    )
    op.drop_table("model_promotions", schema="ml")
