"""Each stored forecast says what it was served as: ml.volatility_predictions.served_as.

A challenger waiting for live evidence forecasts beside production every day, into the same
table. Told apart only by asking the registry which versions wait *now*, its rows became
production's once it was promoted or replaced. ``production`` or ``challenger``, stored with
the row; rows stored before this revision were all production's (the server default).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    # Alembic names the schema of an added column itself, past SQLite's schema mapping.
    return "ml" if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    # SQLite adds a NOT NULL column in place when it has a default: no table copy needed.
    op.add_column(
        "volatility_predictions",
        sa.Column(
            "served_as",
            sa.String(20),
            nullable=False,
            server_default="production",
            comment="production, or challenger: a waiting challenger's live A/B forecast",
        ),
        schema=_schema(),
    )


def downgrade() -> None:
    op.drop_column("volatility_predictions", "served_as", schema=_schema())
