"""Finite values only: prices, the market series and stored forecasts refuse inf and NaN.

``open > 0`` holds for infinity, and PostgreSQL ranks NaN above every number, so the checks of
0001 let both through. The new checks are comparisons, spelled for each database:

* PostgreSQL has no ``isfinite`` for floats; ``x < 'Infinity'`` is false for infinity and for
  NaN alike. The constraints are added ``NOT VALID``: new and changed rows are checked, while
  a bad value an older version stored stays where it is, for ``volforecast quality`` to report
  and for training to skip its ticker, instead of making this migration fail.
* SQLite stores NaN as NULL, which the NOT NULL columns already refuse; infinity is refused by
  triggers comparing with ``9e999`` (SQLite reads that literal as infinity). SQLite can only add
  a CHECK by copying the table, and a copy would fail on the rows the checks are meant to
  report; triggers check new writes alone, as ``NOT VALID`` does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (schema, table, constraint, columns that must be finite, whether they may be negative)
_PRICES = ("open", "high", "low", "close", "adj_close")
_CHECKS = (
    ("market", "stock_prices", "prices_finite", _PRICES, False),
    ("market", "market_variance", "log_rv_finite", ("log_rv",), True),
    ("ml", "volatility_predictions", "volatility_finite", ("predicted_volatility",), False),
)


def _condition(columns: tuple[str, ...], signed: bool, *, infinity: str, prefix: str = "") -> str:
    bounds = [f"{prefix}{c} < {infinity}" for c in columns]
    if signed:
        bounds += [f"{prefix}{c} > -{infinity}" for c in columns]
    return " AND ".join(bounds)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for schema, table, name, columns, signed in _CHECKS:
        constraint = f"ck_{table}_{name}"
        if postgresql:
            condition = _condition(columns, signed, infinity="'Infinity'::float8")
            op.execute(
                f"ALTER TABLE {schema}.{table} ADD CONSTRAINT {constraint} "
                f"CHECK ({condition}) NOT VALID"
            )
            continue
        condition = _condition(columns, signed, infinity="9e999", prefix="NEW.")
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {constraint}_{event.lower()} BEFORE {event} ON {table} "
                f"WHEN NOT ({condition}) BEGIN "
                f"SELECT RAISE(ABORT, 'CHECK constraint failed: {constraint}'); END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for schema, table, name, _columns, _signed in _CHECKS:
        constraint = f"ck_{table}_{name}"
        if postgresql:
            op.execute(f"ALTER TABLE {schema}.{table} DROP CONSTRAINT {constraint}")
            continue
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {constraint}_{event}")
