"""A throwaway PostgreSQL server from the locally installed binaries.

Tests, benchmarks and demos use it to run against a real PostgreSQL without asking the user
to set one up: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port,
and everything removed on exit. PostgreSQL refuses to run as root, so when volforecast runs as
root (containers, CI) the server runs as the ``postgres`` system user that Debian's package
creates.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

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

    Parameters
    ----------
    durable : bool, default True
        Keep PostgreSQL's default crash safety. Tests pass False to turn off ``fsync``, which
        makes them several times faster; benchmarks keep the default so figures are honest.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self.port = 0
        self._dir: Path | None = None
        self._user: str | None = None
        self._bindir: Path | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's ``postgres`` database as superuser ``postgres``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        completed = subprocess.run(
            args, user=self._user, capture_output=True, text=True, check=False, cwd="/"
        )
        if completed.returncode != 0:
            msg = f"{Path(args[0]).name} failed: {(completed.stderr or completed.stdout).strip()}"
            raise DatabaseUnavailableError(msg)

    def start(self) -> Self:
        """Create the cluster and start the server; raise if PostgreSQL is not installed."""
        bindir = find_postgres_bin()
        if bindir is None:
            msg = "PostgreSQL is not installed (no initdb/pg_ctl found): apt-get install postgresql"
            raise DatabaseUnavailableError(msg)
        self._bindir = bindir
        self._dir = Path(tempfile.mkdtemp(prefix="volforecast-pg-"))
        if os.geteuid() == 0:
            self._user = "postgres"
            shutil.chown(self._dir, user="postgres")
        data = str(self._dir / "data")
        self._run(
            str(bindir / "initdb"),
            "-D",
            data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.port = free_port()
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self._dir}"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            str(bindir / "pg_ctl"),
            "-D",
            data,
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "-l",
            str(self._dir / "server.log"),
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self._dir is None or self._bindir is None:
            return
        try:
            self._run(
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self._dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
