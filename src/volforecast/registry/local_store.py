"""The embedded MLflow store (SQLite under ``./var``) in write-ahead-log mode.

MLflow opens its SQLite file in SQLite's default rollback-journal mode, where every commit
waits for the disk, and a training commits a few dozen times for each model it logs. In WAL
mode with ``synchronous=NORMAL`` (as volforecast's own database runs) a commit
waits for nothing, a crash of the process loses nothing committed, and readers (the API, the
MLflow UI) no longer wait for a writer. WAL is a property of the file, set once; the sync level
is one of each connection, so every connection MLflow opens to the file gets it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

BUSY_TIMEOUT_S = 30
"""How long a connection waits for another's write lock before it gives up."""

_TUNED: set[str] = set()
"""Store files whose connections get the sync level (absolute paths)."""


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI; None for anything else."""
    if not uri.startswith("sqlite:"):
        return None
    database = make_url(uri).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def use_wal(uri: str) -> None:
    """Put the SQLite store at ``uri`` in WAL mode, and MLflow's connections to it on NORMAL sync.

    Does nothing for a server or another database.
    """
    path = sqlite_file(uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    if not _TUNED:
        event.listen(Engine, "connect", _normal_sync)
    _TUNED.add(str(path))


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    # Every engine's new connections pass here: only those to a tuned store file change.
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    rows = dbapi_connection.execute("PRAGMA database_list").fetchall()
    if any(row[1] == "main" and row[2] in _TUNED for row in rows):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
