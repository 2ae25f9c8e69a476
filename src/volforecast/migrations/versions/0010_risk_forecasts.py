"""Risk figures and the term structure: ml.risk_forecasts and ml.term_structures.

The daily job stores, beside each production forecast path, the model's VaR and expected
shortfall at 1 and 10 days (95, 97.5 and 99 %) and its annualised volatility at 1, 5, 22, 126
and 252 days, upserted on their keys as the predictions are. The checks bound the values as
well as sign them: PostgreSQL ranks NaN and infinity above every number, and SQLite reads
NaN as NULL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _origin_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(20), nullable=False),
        sa.Column("origin_date", sa.Date(), nullable=False, comment="date of the last close used"),
        sa.Column("days", sa.SmallInteger(), nullable=False, comment="horizon, trading days"),
    ]


def upgrade() -> None:
    op.create_table(
        "risk_forecasts",
        *_origin_columns(),
        sa.Column("level", sa.Double(), nullable=False, comment="confidence level, e.g. 0.99"),
        sa.Column("var_pct", sa.Double(), nullable=False, comment="value at risk, % log return"),
        sa.Column("es_pct", sa.Double(), nullable=False,
                  comment="expected shortfall, % log return"),
        sa.Column("method", sa.Text(), nullable=False, comment="how the tails were made"),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days >= 1", name=op.f("ck_risk_forecasts_days_positive")),
        sa.CheckConstraint("level > 0.5 AND level < 1",
                           name=op.f("ck_risk_forecasts_level_in_tail")),
        sa.CheckConstraint("var_pct > 0 AND var_pct < 1e300",
                           name=op.f("ck_risk_forecasts_var_finite_positive")),
        sa.CheckConstraint("es_pct >= var_pct AND es_pct < 1e300",
                           name=op.f("ck_risk_forecasts_es_finite_not_below_var")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_forecasts")),
        sa.UniqueConstraint("ticker", "model_type", "origin_date", "days", "level",
                            "model_version", name=op.f("uq_risk_forecasts_key")),
        schema="ml",
        comment="VaR and ES; a re-run of a version and origin replaces.",
    )  # fmt: skip
    op.create_index(op.f("ix_risk_forecasts_ticker_origin_date"), "risk_forecasts",
                    ["ticker", "origin_date"], schema="ml")  # fmt: skip

    op.create_table(
        "term_structures",
        *_origin_columns(),
        sa.Column("vol_ann_pct", sa.Double(), nullable=False,
                  comment="sqrt(252 * mean daily variance over the horizon), %"),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days >= 1", name=op.f("ck_term_structures_days_positive")),
        sa.CheckConstraint("vol_ann_pct > 0 AND vol_ann_pct < 1e300",
                           name=op.f("ck_term_structures_vol_finite_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_term_structures")),
        sa.UniqueConstraint("ticker", "model_type", "origin_date", "days", "model_version",
                            name=op.f("uq_term_structures_key")),
        schema="ml",
        comment="Annualised volatility to a year (V-Lab's points).",
    )  # fmt: skip
    op.create_index(op.f("ix_term_structures_ticker_origin_date"), "term_structures",
                    ["ticker", "origin_date"], schema="ml")  # fmt: skip


def downgrade() -> None:
    op.drop_index(op.f("ix_term_structures_ticker_origin_date"), "term_structures", schema="ml")
    op.drop_table("term_structures", schema="ml")
    op.drop_index(op.f("ix_risk_forecasts_ticker_origin_date"), "risk_forecasts", schema="ml")
    op.drop_table("risk_forecasts", schema="ml")
