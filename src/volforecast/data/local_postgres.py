"""A PostgreSQL server from the locally installed binaries.

Tests, benchmarks and demos use it to run against a real PostgreSQL without asking the user
to set one up: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port,
and everything removed on exit. Given a folder and a port instead, the cluster is kept there
between starts (the soak restarts it and resumes on it). PostgreSQL refuses to run as root,
so when volforecast runs as root (containers, CI) the server runs as the ``postgres`` system
user that Debian's package creates.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

import psycopg

from volforecast.errors import DatabaseUnavailableError

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin")


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first, or None."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        (p for pattern in _SEARCH for p in Path("/").glob(pattern.lstrip("/"))),
        key=lambda p: p.parent.name,
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server in a temporary directory, for as long as the context lasts.

    ``durable=False`` turns ``fsync`` off, which makes tests several times faster; benchmarks
    keep PostgreSQL's crash safety so figures are honest. With ``folder`` the cluster lives in
    ``folder/data`` (created on first start, never deleted), and a server already running
    there is reused. ``port`` is a free one by default.
    """

    def __init__(
        self, *, durable: bool = True, folder: Path | None = None, port: int | None = None
    ) -> None:
        self.durable = durable
        self.port = port or 0
        self._kept = folder is not None
        self._dir: Path | None = folder
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        self._bindir: Path | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's ``postgres`` database as superuser ``postgres``."""
        return self.url_of("postgres")

    def url_of(self, database: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of ``database`` as superuser ``postgres``, through ``driver``."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The libpq connection string of ``database`` as superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        completed = subprocess.run(
            args, user=self._user, capture_output=True, text=True, check=False, cwd="/"
        )
        if completed.returncode != 0:
            msg = f"{Path(args[0]).name} failed: {(completed.stderr or completed.stdout).strip()}"
            raise DatabaseUnavailableError(msg)

    def start(self) -> Self:
        """Create the cluster if needed and start the server; raise if PostgreSQL is missing."""
        bindir = find_postgres_bin()
        if bindir is None:
            msg = "PostgreSQL is not installed (no initdb/pg_ctl found): apt-get install postgresql"
            raise DatabaseUnavailableError(msg)
        self._bindir = bindir
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="volforecast-pg-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            shutil.chown(self._dir, user=self._user)
        if not (self._dir / "data").exists():
            # Into a side folder first: an initdb killed half-way leaves no cluster to trust.
            partial = self._dir / "data.partial"
            shutil.rmtree(partial, ignore_errors=True)
            self._run(str(bindir / "initdb"), "-D", str(partial), "-U", "postgres",
                      "-A", "trust", "-E", "UTF8", "--no-sync")  # fmt: skip
            partial.rename(self._dir / "data")
        self.port = self.port or free_port()
        if not self.healthy():
            self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        if self._dir is None or self._bindir is None:
            msg = "the server was never started"
            raise DatabaseUnavailableError(msg)
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self._dir}"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(str(self._bindir / "pg_ctl"), "-D", str(self._dir / "data"),
                  "-o", " ".join(options), "-w", "-t", "60",
                  "-l", str(self._dir / "server.log"), action, *extra)  # fmt: skip

    def healthy(self) -> bool:
        """Whether the server answers a query now."""
        if not self.port:
            return False
        try:
            with psycopg.connect(self.dsn(), connect_timeout=3) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every client's connection is cut."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop the server; a temporary cluster's directory is deleted with it."""
        if self._dir is None or self._bindir is None:
            return
        try:
            if (self._dir / "data" / "postmaster.pid").exists():
                mode = "fast" if self._kept else "immediate"
                self._run(str(self._bindir / "pg_ctl"), "-D", str(self._dir / "data"),
                          "-m", mode, "-w", "stop")  # fmt: skip
        finally:
            if not self._kept:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()
