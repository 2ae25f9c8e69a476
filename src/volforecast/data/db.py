"""Database engines for SQLite (embedded default) and PostgreSQL, and schema migrations."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Executable, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError

from volforecast.data.tables import SCHEMAS, Base
from volforecast.errors import DatabaseUnavailableError
from volforecast.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# Its own version table, so volforecast can share a PostgreSQL database with MLflow or Airflow
# (both keep an `alembic_version` of their own).
VERSION_TABLE = "volforecast_alembic_version"

# What a driver raises when the server is gone, refuses us, or times out; other database errors
# (a violated constraint, say) are bugs and must surface as such.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)

# SQLite has no schemas: `market.stock_prices` becomes `stock_prices` in the one file.
SQLITE_SCHEMA_MAP: dict[str | None, str | None] = dict.fromkeys(SCHEMAS)


def _tune_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # WAL lets the API read while a job writes; NORMAL sync is safe under WAL and much faster.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its first statement.

    For a writer that reads what it is about to change (counts before a merge, a mark it
    clears). On SQLite an ordinary transaction reads a snapshot and may find, at its first
    write, that another writer got in first; ``BEGIN IMMEDIATE`` queues it behind that
    writer instead (for ``busy_timeout``), and makes DDL such as a staging table part of the
    transaction, gone with a rollback. PostgreSQL needs nothing more than its row locks.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


class Repository:
    """What every repository holds: the engine, and the one way its reads become frames."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _frame(self, query: Executable) -> pd.DataFrame:
        import pandas as pd  # noqa: PLC0415  (the `db` commands and migrations need no pandas)

        with self.engine.connect() as connection:
            result = connection.execute(query)
            # Plain tuples: pandas probes SQLAlchemy rows attribute by attribute, slowly.
            return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()))


def create_db_engine(settings: Settings) -> Engine:
    """An engine for :attr:`Settings.database_url`; nothing is connected yet.

    SQLite files get their directory created and the ``market``/``ml`` schemas mapped away;
    PostgreSQL connections are checked before use so a restarted server is picked up again.
    """
    url = make_url(settings.database_url)
    if settings.database_backend == "sqlite":
        if url.database and url.database != ":memory:":
            # A directory that cannot be made surfaces at connect time, as sqlite3's own
            # "unable to open database file", through the same error path as a dead server.
            with contextlib.suppress(OSError):
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        return engine.execution_options(schema_translate_map=SQLITE_SCHEMA_MAP)
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "volforecast"},
    )


def describe(engine: Engine) -> str:
    """The engine's URL with the password masked."""
    return engine.url.render_as_string(hide_password=True)


def unavailable(engine: Engine, exc: BaseException) -> DatabaseUnavailableError:
    """A :class:`DatabaseUnavailableError` naming the database and the driver's first line."""
    reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return DatabaseUnavailableError(f"database {describe(engine)} is unavailable: {first}")


@contextlib.contextmanager
def reachable(engine: Engine) -> Iterator[None]:
    """Raise what the driver raises for a database that is down as :func:`unavailable`'s error."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise unavailable(engine, exc) from exc


def check_connection(engine: Engine) -> None:
    """Open and close one connection, raising :class:`DatabaseUnavailableError` on failure."""
    with reachable(engine), engine.connect():
        pass


def head_revision() -> str:
    """The newest migration this version of volforecast ships."""
    script = ScriptDirectory(str(files("volforecast") / "migrations"))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        msg = "no migrations found in the volforecast package"
        raise RuntimeError(msg)
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None when it was never migrated."""
    with reachable(engine), engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (creating the schemas on PostgreSQL)."""
    _run_migration(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` removes every table)."""
    _run_migration(engine, "downgrade", revision)


def _run_migration(engine: Engine, direction: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(files("volforecast") / "migrations"))
    config.set_main_option("sqlalchemy.url", describe(engine).replace("%", "%%"))
    with reachable(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)


def ensure_schema(engine: Engine) -> None:
    """Make sure the tables exist before a job writes.

    A database with no tables at all is migrated on the spot, so a first
    ``volforecast ingest`` on a fresh machine just works. A database that holds tables but is
    behind this version is left alone: migrating existing data is a decision for
    ``volforecast db upgrade``.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        sqlite = engine.dialect.name == "sqlite"
        with engine.connect() as connection:
            inspector = inspect(connection)
            ours = [
                inspector.has_table(table.name, schema=None if sqlite else table.schema)
                for table in Base.metadata.sorted_tables
            ]
        if not any(ours):
            log.info("Creating the volforecast tables in %s", describe(engine))
            upgrade(engine)
            return
    msg = (
        f"database {describe(engine)} is at schema revision {current or 'none'}, this version "
        f"of volforecast needs {head}: run `volforecast db upgrade`"
    )
    raise DatabaseUnavailableError(msg)


def as_date(value: dt.date | str) -> dt.date:
    """A date as the driver gave it: SQLite hands back aggregates of DATE columns as text."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
