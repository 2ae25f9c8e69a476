"""The one upsert of every repository: ``INSERT … ON CONFLICT (key) DO UPDATE``.

PostgreSQL and SQLite both have the statement; SQLAlchemy builds it from each dialect's own
``insert``, chosen here by the connection. A row whose key is stored has its other columns
replaced, so writing the same rows again leaves one row per key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, Engine, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def dialect_insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``table`` that has the connection's ``ON CONFLICT`` clauses."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert_statement(
    connection: Connection,
    table: Table,
    key: Sequence[str],
    columns: Sequence[str],
    *,
    changed: Sequence[str] = (),
) -> Insert:
    """Insert, or set ``columns`` of the stored row with the same ``key`` to the new values.

    With ``changed``, a stored row is updated only when one of those columns differs from
    the new row (``IS DISTINCT FROM``), so writing an unchanged row touches nothing.
    """
    statement = dialect_insert(connection, table)
    new = statement.excluded
    where = or_(*[table.c[c].is_distinct_from(new[c]) for c in changed]) if changed else None
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={c: new[c] for c in columns}, where=where
    )


def upsert(
    engine: Engine,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    key: Sequence[str],
    *,
    keep: Sequence[str] = (),
) -> int:
    """Write ``rows`` in one transaction, replacing every column outside ``key``; the count.

    ``keep``: columns a stored row keeps as they were first written.
    """
    if not rows:
        return 0
    with engine.begin() as connection:
        columns = [c for c in rows[0] if c not in key and c not in keep]
        connection.execute(upsert_statement(connection, table, key, columns), rows)
    return len(rows)
