"""Job leases: a claim that lives exactly as long as the process holding it.

A training run marks what it writes to the registry with its job token. When a later run finds
a version still waiting for its decision, it must tell a run that is deciding right now from
one that was killed. A lease answers that without clocks or heartbeats: the operating system
ends it with the process.

* PostgreSQL: a session-level advisory lock on a connection the job keeps open; the server
  drops it when the session ends, which a killed process's session does. This needs a direct
  connection: behind a pooler in transaction mode (PgBouncer) sessions are shared.
* SQLite: an ``flock`` on a file beside the database file, which the kernel releases when the
  process dies. SQLite is a local file, so every process using it sees the same lock files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import uuid
from pathlib import Path
from typing import IO, Self

from sqlalchemy import Connection, Engine, text

from volforecast.data.db import reachable


def _key(token: str) -> int:
    """The advisory-lock key of a token: 64 bits of its hash, as PostgreSQL's signed bigint."""
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big", signed=True)


def _advisory(connection: Connection, function: str, token: str) -> object:
    return connection.execute(text(f"SELECT {function}(:key)"), {"key": _key(token)}).scalar_one()


def _lock_dir(engine: Engine) -> Path:
    database = engine.url.database
    base = Path(database).parent if database and database != ":memory:" else Path.cwd()
    return base / ".volforecast-leases"


def _try_flock(path: Path) -> IO[str] | None:
    """The open file, locked; None when another process holds the lock."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class JobLease:
    """The lease of one job: taken on entry, released on exit or when the process dies.

    The kind of store ``engine`` is decides how the lease is held; ``token`` is the job's
    token, a new one by default.
    """

    def __init__(self, engine: Engine, token: str | None = None) -> None:
        self.engine = engine
        self.token = token or uuid.uuid4().hex
        self._connection: Connection | None = None
        self._file: IO[str] | None = None

    def __enter__(self) -> Self:
        if self.engine.dialect.name == "postgresql":
            with reachable(self.engine):
                self._connection = self.engine.connect()
                _advisory(self._connection, "pg_advisory_lock", self.token)
                self._connection.commit()
            return self
        folder = _lock_dir(self.engine)
        folder.mkdir(parents=True, exist_ok=True)
        self._file = _try_flock(folder / self.token)
        if self._file is None:  # pragma: no cover - tokens are fresh uuids
            msg = f"job token {self.token} is held by another process"
            raise RuntimeError(msg)
        return self

    def __exit__(self, *_exc_info: object) -> None:
        if self._connection is not None:
            # Closing would only return the session to the pool, lock and all: the session
            # is ended instead, which releases the lock whether or not the server answers.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
        if self._file is not None:
            with contextlib.suppress(FileNotFoundError):
                (_lock_dir(self.engine) / self.token).unlink()
            self._file.close()
            self._file = None


def is_alive(engine: Engine, token: str) -> bool:
    """Whether a process still holds the lease of ``token``."""
    if engine.dialect.name == "postgresql":
        with reachable(engine), engine.connect() as connection:
            free = _advisory(connection, "pg_try_advisory_lock", token)
            if free:
                _advisory(connection, "pg_advisory_unlock", token)
        return not free
    path = _lock_dir(engine) / token
    if not path.exists():
        return False
    handle = _try_flock(path)
    if handle is None:
        return True
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead job's file: nobody will come back for it
    handle.close()
    return False
