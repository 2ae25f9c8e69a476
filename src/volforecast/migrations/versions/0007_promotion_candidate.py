"""The promotion log names the version each entry judged: ml.model_promotions.candidate.

A reject entry's ``version`` is where production stays, so the log could not say which
challenger it turned down. With the candidate named, a training run can tell a version that
was decided from one a killed run left undecided, and settle only the latter.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    # Alembic names the schema of an added column itself, past SQLite's schema mapping.
    return "ml" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    op.add_column(
        "model_promotions",
        sa.Column(
            "candidate",
            sa.String(20),
            nullable=True,
            comment="the version a training run judged; NULL for moves by hand",
        ),
        schema=_schema(),
    )


def downgrade() -> None:
    op.drop_column("model_promotions", "candidate", schema=_schema())
