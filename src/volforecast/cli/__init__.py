"""The ``volforecast`` command line: every command calls a job and prints its report.

Exit codes are decided here and only here:

* 0 - everything asked for was done;
* 1 - an error: bad input, a source that cannot be read, nothing loaded;
* 2 - the command line itself is wrong (unknown option, missing argument, an option that
  cannot work);
* 3 - partial: some tickers or rows were rejected, the rest went through;
* 4 - a service is unavailable (the database, the MLflow server); retrying later is the remedy;
* 5 - stale prices: the last stored close is older than the NYSE session the run is for.
* 130 - interrupted (Ctrl-C); the command says what it kept.

The commands are in ``cli/commands/``, one module per group; their tables in ``cli/render``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from volforecast import __version__
from volforecast.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    StalePricesError,
    TrackingUnavailableError,
    VolforecastError,
)
from volforecast.settings import Settings, get_settings

out = Console()
err = Console(stderr=True)


class ExitCode(IntEnum):
    """Process exit codes; see the module docstring."""

    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    UNAVAILABLE = 4
    STALE = 5
    INTERRUPTED = 130


EXIT_FOR: list[tuple[type[VolforecastError], ExitCode]] = [
    (DatabaseUnavailableError, ExitCode.UNAVAILABLE),
    (TrackingUnavailableError, ExitCode.UNAVAILABLE),
    (StalePricesError, ExitCode.STALE),
    (ConfigurationError, ExitCode.USAGE),
    (VolforecastError, ExitCode.ERROR),
]
"""Each domain error's exit code, the first that matches; the one map of the CLI."""

app = typer.Typer(
    name="volforecast",
    help=(
        "Forecast stock volatility and run the model lifecycle around it.\n\n"
        "Settings come from VOLFORECAST_* environment variables or a .env file; by default "
        "everything lives under ./var (SQLite). Exit codes: 0 done, 1 error, 2 usage, "
        "3 partial (some tickers rejected), 4 database or MLflow server unavailable, "
        "5 stale prices (the last close is older than the run's NYSE session)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def fail(message: str, code: ExitCode) -> NoReturn:
    """One sentence on stderr, and the exit code."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(int(code))


def interrupted(message: str) -> NoReturn:
    """Ctrl-C: what the command kept, and exit code 130."""
    err.print(f"[bold yellow]interrupted:[/] {escape(message)}", highlight=False)
    raise typer.Exit(int(ExitCode.INTERRUPTED))


@contextmanager
def errors() -> Iterator[None]:
    """Turn domain errors into one sentence on stderr and their exit code."""
    try:
        yield
    except VolforecastError as exc:
        fail(str(exc), next(code for kind, code in EXIT_FOR if isinstance(exc, kind)))


@contextmanager
def database_errors(engine: Any) -> Iterator[None]:
    """Check the schema first, and turn a database that does not answer into exit code 4."""
    from volforecast.data.db import ensure_schema, reachable  # noqa: PLC0415

    with reachable(engine):
        ensure_schema(engine)
        yield


_level_from_flags: int | None = None


def settings() -> Settings:
    """The settings, or exit code 1 with every invalid one named."""
    try:
        loaded = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"VOLFORECAST_{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}", ExitCode.ERROR)
    if _level_from_flags is None:  # -v and -q win over VOLFORECAST_LOG_LEVEL
        logging.getLogger("volforecast").setLevel(loaded.log_level)
    return loaded


def engine(settings: Settings) -> Any:
    """The database engine of these settings."""
    from volforecast.data.db import create_db_engine  # noqa: PLC0415  (keeps --help fast)

    return create_db_engine(settings)


def quiet_mlflow() -> None:
    """MLflow's chatter per run and version only with --verbose; its warnings still show.

    The chatter: run URLs, the input example's validation, its database set-up. Called once
    mlflow is imported, as its import sets its loggers up.
    """
    if _level_from_flags == logging.DEBUG:
        return
    from volforecast.registry.tracking import quiet_mlflow_logs  # noqa: PLC0415

    quiet_mlflow_logs()


def _version(value: bool) -> None:
    if value:
        out.print(f"volforecast {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    global _level_from_flags  # noqa: PLW0603  (one process, one command line)
    _level_from_flags = logging.DEBUG if verbose else logging.WARNING if quiet else None
    logging.basicConfig(
        level=logging.WARNING,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    logging.getLogger("volforecast").setLevel(_level_from_flags or logging.INFO)


def main() -> None:
    """Entry point of the ``volforecast`` console script."""
    app()


# The commands, in the order --help lists them; the groups come after.
from volforecast.cli.commands import backtest, data, db, monitor, predict, registry, serve, train

_COMMANDS: list[tuple[str, Callable[..., None]]] = [
    ("ingest", data.ingest), ("quality", data.quality), ("backtest", backtest.backtest),
    ("train", train.train), ("mlflow", serve.mlflow_server), ("serve", serve.serve),
    ("dashboard", serve.dashboard), ("predict", predict.predict), ("tickers", data.list_tickers),
]  # fmt: skip
for _name, _command in _COMMANDS:
    app.command(_name)(_command)
for _name, _group in [("db", db.app), ("models", registry.app), ("monitor", monitor.app)]:
    app.add_typer(_group, name=_name)
