"""The ``volforecast`` command line: every command calls a job and prints its report.

Exit codes are decided here and only here:

* 0 - everything asked for was done;
* 1 - an error: bad input, a source that cannot be read, nothing loaded;
* 2 - the command line itself is wrong (unknown option, missing argument);
* 3 - partial: some tickers or rows were rejected, the rest went through;
* 4 - a service is unavailable (the database, the MLflow server); retrying later is the remedy;
* 5 - stale prices: the last stored close is older than the NYSE session the run is for.
* 130 - interrupted (Ctrl-C); the command says what it kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from volforecast import __version__
from volforecast.errors import (
    DatabaseUnavailableError,
    DataSourceError,
    RegistryError,
    StalePricesError,
    TrackingUnavailableError,
    UnknownTickerError,
    VolforecastError,
)
from volforecast.models.lstm_config import BACKTEST_REFIT, LstmConfig
from volforecast.settings import Settings, get_settings

log = logging.getLogger("volforecast")
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


_EXIT_FOR: list[tuple[type[VolforecastError], ExitCode]] = [
    (DatabaseUnavailableError, ExitCode.UNAVAILABLE),
    (TrackingUnavailableError, ExitCode.UNAVAILABLE),
    (StalePricesError, ExitCode.STALE),
    (RegistryError, ExitCode.ERROR),
    (DataSourceError, ExitCode.ERROR),
    (UnknownTickerError, ExitCode.ERROR),
    (VolforecastError, ExitCode.ERROR),
]

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
db_app = typer.Typer(help="Create and migrate the database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(
    help="The MLflow registry: list models, promote or roll back production, read the log.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
monitor_app = typer.Typer(
    help="Watch the production models: accuracy, drift alerts, the retraining queue; replay "
    "a past period.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")


def _fail(message: str, code: ExitCode) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(int(code))


@contextmanager
def _errors() -> Iterator[None]:
    """Turn domain errors into one sentence on stderr and their exit code."""
    try:
        yield
    except VolforecastError as exc:
        code = next(code for kind, code in _EXIT_FOR if isinstance(exc, kind))
        _fail(str(exc), code)


@contextmanager
def _database_errors(engine: Any) -> Iterator[None]:
    """Check the schema first, and turn a database that does not answer into exit code 4."""
    from volforecast.data.db import UNAVAILABLE_ERRORS, ensure_schema, unavailable  # noqa: PLC0415

    try:
        ensure_schema(engine)
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise unavailable(engine, exc) from exc


_level_from_flags: int | None = None


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"VOLFORECAST_{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid settings: {problems}", ExitCode.ERROR)
    if _level_from_flags is None:  # -v and -q win over VOLFORECAST_LOG_LEVEL
        logging.getLogger("volforecast").setLevel(settings.log_level)
    return settings


def _engine(settings: Settings) -> Any:
    from volforecast.data.db import create_db_engine  # noqa: PLC0415  (keeps --help fast)

    return create_db_engine(settings)


def _version(value: bool) -> None:
    if value:
        out.print(f"volforecast {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings only.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
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


_LSTM = LstmConfig()  # the one set of defaults: the help states them, the jobs apply them
LstmEpochsOption = Annotated[
    int | None,
    typer.Option(min=1, help=f"LSTM: most epochs from scratch (default {_LSTM.max_epochs})."),
]
LstmBatchOption = Annotated[
    int | None,
    typer.Option(min=1, help=f"LSTM: windows per batch (default {_LSTM.batch_size})."),
]
LstmStrideOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"LSTM: use every n-th training and validation window (default {_LSTM.stride}).",
    ),
]
LstmPatienceOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="LSTM: stop after this many epochs without a better validation loss "
        f"(default {_LSTM.patience}).",
    ),
]


def _lstm_settings(**given: int | None) -> dict[str, int]:
    """The LstmConfig fields given on the command line; the others keep their defaults."""
    return {key: value for key, value in given.items() if value is not None}


def _epoch_bar(bar: Progress) -> Callable[[Any], None]:
    """Progress of each pooled LSTM training, epoch by epoch, as a task of its own."""
    tasks: list[TaskID] = []

    def on_epoch(report: Any) -> None:  # an EpochReport (torch is imported only when asked)
        label = (
            f"LSTM epoch {report.epoch}: validation QLIKE {report.validation_loss:.4f} "
            f"(best at {report.best_epoch})"
        )
        total = report.epoch if report.last else report.max_epochs
        if not tasks:
            tasks.append(bar.add_task(label, total=total))
        elif report.epoch == 1:  # the next training (a backtest's refit)
            bar.reset(tasks[0], total=total)
        bar.update(tasks[0], completed=report.epoch, total=total, description=label)

    return on_epoch


def _quiet_mlflow() -> None:
    """MLflow's chatter per run and version only with --verbose; its warnings still show.

    The chatter: run URLs, "Successfully registered model", "Created version", its database
    set-up. Called once mlflow is imported, as its import sets its loggers up.
    """
    if _level_from_flags == logging.DEBUG:
        return
    from mlflow.utils.logging_utils import disable_logging  # noqa: PLC0415

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    disable_logging()  # type: ignore[no-untyped-call]  # its prints and its own handler
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.handlers = []  # its warnings go through ours instead
        logger.propagate = True


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


# --------------------------------------------------------------------------------------------
# db


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the tables up to REVISION (the newest by default)."""
    from volforecast.data import db  # noqa: PLC0415

    settings = _settings()
    engine = _engine(settings)
    with _errors():
        db.upgrade(engine, revision)
        out.print(f"{db.describe(engine)} is at revision {db.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the tables down to REVISION; data in dropped tables is lost."""
    from volforecast.data import db  # noqa: PLC0415

    settings = _settings()
    engine = _engine(settings)
    if not yes:
        typer.confirm(f"Downgrade {db.describe(engine)} to {revision}?", abort=True)
    with _errors():
        db.downgrade(engine, revision)
        out.print(f"{db.describe(engine)} is at revision {db.current_revision(engine) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest this version ships."""
    from volforecast.data import db  # noqa: PLC0415

    settings = _settings()
    engine = _engine(settings)
    with _errors():
        current = db.current_revision(engine)
    head = db.head_revision()
    state = "up to date" if current == head else "run `volforecast db upgrade`"
    out.print(f"{db.describe(engine)}: revision {current or 'none'}, newest {head} ({state})")


# --------------------------------------------------------------------------------------------
# ingest and quality


TickersOption = Annotated[str | None, typer.Option(help="Comma-separated tickers (or --all).")]


def _chosen_tickers(tickers: str | None, all_tickers: bool) -> list[str] | None:
    """The tickers of `--tickers A,B`, or None for `--all`; exactly one must be given."""
    if (tickers is None) == (not all_tickers):
        _fail("give --tickers A,B,... or --all", ExitCode.USAGE)
    return _split_tickers(tickers)


def _split_tickers(value: str | None) -> list[str] | None:
    if value is None:
        return None
    tickers = [t.strip().upper() for t in value.split(",") if t.strip()]
    if not tickers:
        msg = "give at least one ticker"
        raise typer.BadParameter(msg)
    return tickers


def _print_quality(report: Any, *, show_all: bool) -> None:
    table = Table(title="Data quality per ticker", show_lines=False, title_justify="left")
    for column, justify in [
        ("ticker", "left"),
        ("status", "left"),
        ("rows in", "right"),
        ("accepted", "right"),
        ("rejected", "right"),
        ("findings", "left"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    style = {"ok": "green", "partial": "yellow", "rejected": "red"}
    shown = 0
    for ticker, q in sorted(report.tickers.items()):
        if q.status == "ok" and not show_all:
            continue
        shown += 1
        lines = []
        for f in q.findings:
            lines.append(f"[bold]{f.check}[/] ×{f.rows}: {escape(f.detail)}")
            lines.extend(f"   e.g. {escape(example)}" for example in f.examples)
        table.add_row(
            escape(ticker) or "(empty)",
            f"[{style[q.status]}]{q.status}[/]",
            f"{q.received:,}",
            f"{q.accepted:,}",
            f"{q.rejected:,}",
            "\n".join(lines) or "-",
        )
    if shown:
        out.print(table)
    ok = len(report.with_status("ok"))
    out.print(
        f"{len(report.tickers)} tickers: [green]{ok} ok[/], "
        f"[yellow]{len(report.with_status('partial'))} partial[/], "
        f"[red]{len(report.with_status('rejected'))} rejected[/]; "
        f"{report.rows_accepted:,} of {report.rows_received:,} rows accepted"
    )


def _write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        out.print(f"report written to {path}")


@app.command()
def ingest(
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help="The bundled sample: S&P 500 (^GSPC) and NASDAQ (^IXIC) daily OHLC, "
            "1999-2018, shipped with the arch package. Works offline.",
        ),
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="A CSV or Parquet file, long layout (one row per ticker and date). Columns, "
            "case and spacing ignored: ticker|symbol, date, open, high, low, close, "
            "adj_close|adjusted_close|'adj close' (else close), volume, "
            "split_coefficient (optional, checks splits). Others are ignored.",
        ),
    ] = None,
    ticker: Annotated[
        str | None,
        typer.Option("--ticker", help="The ticker of a one-ticker --file without that column."),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(
            "--date-format",
            help="The strptime format of --file's dates, e.g. '%d/%m/%Y' for 31/12/2018. "
            "Without it ISO dates (2018-12-31) are read, or the one known format that reads "
            "the column; dates that could be day-first or month-first are refused.",
        ),
    ] = None,
    yfinance: Annotated[
        str | None,
        typer.Option(
            "--yfinance",
            help="Comma-separated tickers to download from Yahoo Finance (needs internet and "
            "pip install 'volforecast[yfinance]').",
        ),
    ] = None,
    configured: Annotated[
        bool,
        typer.Option(
            "--configured",
            help="The configured source (VOLFORECAST_INGEST__SOURCE): the files waiting in the "
            "drop folder (VOLFORECAST_INGEST__DROP_DIR, default VOLFORECAST_HOME/incoming; "
            "each moves to loaded/ or failed/) or Yahoo Finance. What the daily DAG runs.",
        ),
    ] = False,
    drop_dir: Annotated[
        Path | None,
        typer.Option("--drop-dir", help="With --configured: load the files in this folder."),
    ] = None,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="With --configured: the run's date, whose NYSE close the freshness line "
            "checks (default today's once it has closed).",
        ),
    ] = None,
    start: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First date for --yfinance.")
    ] = None,
    end: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last date for --yfinance.")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write the rejected rows to this CSV, with the check that failed."),
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the full report as JSON.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every ticker, not only those with findings.")
    ] = False,
) -> None:
    """Load daily prices through the data-quality gate into market.stock_prices.

    Rows are upserted by (ticker, date) in chunks, so running the same load twice changes
    nothing and a load cut short can simply be run again. Bad rows are rejected and reported
    per ticker; good tickers load. Exit code 3 means partial: something was rejected.
    """
    from volforecast.data import sources  # noqa: PLC0415
    from volforecast.jobs.ingest import ingest as run_ingest  # noqa: PLC0415

    chosen = [
        name
        for name, on in [
            ("--sample", sample),
            ("--file", file is not None),
            ("--yfinance", yfinance is not None),
            ("--configured", configured),
        ]
        if on
    ]
    if len(chosen) != 1:
        _fail("give exactly one of --sample, --file PATH, --yfinance TICKERS, --configured",
              ExitCode.USAGE)  # fmt: skip
    if (drop_dir is not None or as_of is not None) and not configured:
        _fail("--drop-dir and --as-of go with --configured", ExitCode.USAGE)
    if configured:
        _ingest_configured(drop_dir, None if as_of is None else as_of.date(), report_json)
        return
    if yfinance is not None and start is None:
        _fail("--yfinance needs --start YYYY-MM-DD", ExitCode.USAGE)
    if (ticker is not None or date_format is not None) and file is None:
        _fail("--ticker and --date-format go with --file", ExitCode.USAGE)

    settings = _settings()
    engine = _engine(settings)
    with _errors():
        loader: Callable[[], sources.PriceBatch]
        if sample:
            loader = sources.load_sample
        elif file is not None:
            loader = lambda: sources.load_file(  # noqa: E731
                file, ticker=ticker, date_format=date_format
            )
        else:
            tickers = _split_tickers(yfinance) or []
            assert start is not None  # noqa: S101  (checked above)
            loader = lambda: sources.load_yfinance(  # noqa: E731
                tickers, start.date(), end.date() if end else None
            )
        with err.status("Reading prices..."):
            batch = loader()
        with _progress() as bar:
            task = bar.add_task(f"Upserting {batch.source}", total=None)
            report = run_ingest(
                batch,
                engine=engine,
                settings=settings,
                rejects_path=rejects,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    _print_quality(report.quality, show_all=show_all)
    counts = report.counts
    out.print(
        f"[bold]{report.status}[/]: {counts.inserted:,} rows inserted, {counts.updated:,} "
        f"updated, {counts.unchanged:,} unchanged in {report.seconds:.1f} s "
        f"into {settings.database_url_safe}; the market series refreshed for "
        f"{report.market_days:,} days"
    )
    if report.rejects_file:
        out.print(f"rejected rows written to {report.rejects_file}")
    _write_json(report_json, report.to_dict())
    if report.status == "failed":
        raise typer.Exit(int(ExitCode.ERROR))
    if report.status == "partial":
        raise typer.Exit(int(ExitCode.PARTIAL))


def _ingest_configured(
    drop_dir: Path | None, as_of: dt.date | None, report_json: Path | None
) -> None:
    """``ingest --configured``: the drop folder or Yahoo, a line per file, the freshness."""
    from volforecast.jobs.ingest_configured import ingest_configured  # noqa: PLC0415

    settings = _settings()
    if drop_dir is not None:
        settings.ingest.source, settings.ingest.drop_dir = "drop", drop_dir
    engine = _engine(settings)
    with _errors(), err.status(f"Loading from {settings.ingest.source}..."):
        report = ingest_configured(engine, settings, as_of)
    for file in report.files:
        colour = {"loaded": "green", "partial": "yellow", "failed": "red"}[file.status]
        out.print(f"[{colour}]{file.status}[/] {escape(file.name)}: {escape(file.message)}")
    if report.source.startswith("drop") and not report.files:
        out.print(f"no price file waiting in {settings.ingest.drop_dir}")
    for failure in [] if report.files else report.failures:  # a file's is on its line
        err.print(f"[red]failed:[/] {escape(failure)}")
    payload = report.to_dict()
    out.print(f"[bold]{report.status}[/]: {payload['inserted']:,} rows inserted, "
              f"{payload['updated']:,} updated, {payload['unchanged']:,} unchanged; "
              f"prices {report.freshness.health_detail}")  # fmt: skip
    _write_json(report_json, payload)
    if report.status != "complete":
        raise typer.Exit(int(ExitCode.ERROR if report.status == "failed" else ExitCode.PARTIAL))


@app.command()
def quality(
    tickers: Annotated[
        str | None, typer.Option(help="Comma-separated tickers; all stored tickers by default.")
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the full report as JSON.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every ticker, not only those with findings.")
    ] = False,
) -> None:
    """Run the data-quality gate over stored prices and print its report (deletes nothing).

    Exit code 3 when a check fails for some ticker.
    """
    from volforecast.jobs.quality import check_stored  # noqa: PLC0415

    settings = _settings()
    engine = _engine(settings)
    with _errors(), err.status("Checking stored prices..."):
        report = check_stored(engine, settings.quality, _split_tickers(tickers))
    _print_quality(report, show_all=show_all)
    _write_json(report_json, report.to_dict())
    if not report.clean:
        raise typer.Exit(int(ExitCode.PARTIAL))


@app.command()
def backtest(
    prices: Annotated[
        Path | None,
        typer.Option("--prices", help="Prices file (CSV/Parquet, the --file layout of ingest)."),
    ] = None,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="Use the prices stored in the database.")
    ] = False,
    tickers: TickersOption = None,
    all_tickers: Annotated[bool, typer.Option("--all", help="Every ticker available.")] = False,
    train_end: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day of the first fit.")
    ] = dt.datetime(2014, 12, 31),
    test_end: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last forecast origin.")
    ] = dt.datetime(2018, 12, 31),
    refit_every: Annotated[
        int, typer.Option(min=1, help="Trading days between refits; frozen in between.")
    ] = 21,
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated models: garch, garch-t, gjr-garch-t, egarch, ewma, "
            "historical, har, lstm, ensemble, ... (see the README); a+b is a "
            "combination of a and b, e.g. har+lstm (see --combine)."
        ),
    ] = "garch,har,ewma",
    combine: Annotated[
        str,
        typer.Option(
            help="How a+b weighs its members: equal, or learned (weights per step, pooled "
            "over tickers, from the forecasts realized before each refit)."
        ),
    ] = "equal",
    horizon: Annotated[int, typer.Option(min=1, max=30, help="Steps per path.")] = 30,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write every forecast (.csv or .parquet): ticker, model, origin_date, step, "
            "forecast_date, predicted_volatility (daily %).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, help="Processes for per-ticker models; 0 = one per CPU.")
    ] = 1,
    lstm_epochs: LstmEpochsOption = None,
    lstm_batch_size: LstmBatchOption = None,
    lstm_stride: LstmStrideOption = None,
    lstm_patience: LstmPatienceOption = None,
    lstm_refit_epochs: Annotated[
        int,
        typer.Option(
            min=1,
            help="LSTM: epochs of each refit after the first block's, from the previous "
            "block's weights.",
        ),
    ] = BACKTEST_REFIT.max_epochs,
) -> None:
    """Walk-forward backtest: forecast from every trading day of the test period.

    Each model is refitted every --refit-every trading days on all data before the refit
    and filters new days with frozen parameters in between; nothing after an origin is used
    for that origin. Prints the median across tickers of each model's QLIKE relative to
    GARCH(1,1) at 1, 5 and 22 days, on the range-based and the squared-return proxy.
    """
    from volforecast.evaluation.backtest import (  # noqa: PLC0415
        POOLED_MODELS,
        BacktestConfig,
        blocks,
    )
    from volforecast.evaluation.metrics import relative_qlike  # noqa: PLC0415
    from volforecast.jobs.backtest import run_backtest  # noqa: PLC0415

    if (prices is None) == (not from_db):
        _fail("give exactly one of --prices FILE and --from-db", ExitCode.USAGE)
    chosen = _chosen_tickers(tickers, all_tickers)
    names = tuple(m.strip().lower() for m in models.split(",") if m.strip())
    settings = _settings()
    with _errors():
        try:
            lstm_settings = _lstm_settings(
                max_epochs=lstm_epochs, batch_size=lstm_batch_size, stride=lstm_stride,
                patience=lstm_patience,
            )  # fmt: skip
            config = BacktestConfig(
                train_end.date(), test_end.date(), names, refit_every, horizon, combine=combine,
                lstm_refit_epochs=lstm_refit_epochs, lstm_settings=dict(lstm_settings),
            )  # fmt: skip
        except ValueError as exc:
            _fail(str(exc), ExitCode.USAGE)
        with err.status("Reading prices..."):
            if prices is not None:
                from volforecast.data.sources import load_file  # noqa: PLC0415

                frame = load_file(prices).frame
                market = None  # computed from every ticker of the file
            else:
                from volforecast.data.db import ensure_schema  # noqa: PLC0415
                from volforecast.data.repositories.market import MarketRepository  # noqa: PLC0415
                from volforecast.data.repositories.prices import PriceRepository  # noqa: PLC0415

                engine = _engine(settings)
                ensure_schema(engine)
                frame = PriceRepository(engine).load(chosen)
                market = MarketRepository(engine).load()
        present = set(frame["ticker"].unique())
        n_tickers = len(present & set(chosen)) if chosen else len(present)
        # One step per ticker (the per-ticker pass visits each, even with nothing to fit),
        # then one per block of each pooled model, members of combinations included.
        pooled = [m for m in config.fitted_models if m in POOLED_MODELS]
        total = n_tickers + len(pooled) * len(blocks(config))
        with _progress() as bar:
            task = bar.add_task("Backtesting", total=total)
            try:
                report = run_backtest(
                    frame, config, quality=settings.quality, tickers=chosen, workers=workers,
                    out=out_file, progress=lambda _: bar.advance(task), market=market,
                    on_epoch=_epoch_bar(bar),
                )  # fmt: skip
            except KeyboardInterrupt:
                bar.stop()
                _interrupted("the backtest stopped before its end; no forecast was written")
    if report.losses.empty:
        _fail(
            "no forecast could be evaluated (is the test period inside the data?)", ExitCode.ERROR
        )
    baseline = "garch" if "garch" in names else names[0]
    table = relative_qlike(report.losses, baseline)
    view = Table(
        title=f"Median QLIKE relative to {baseline.upper()} (lower is better)", title_justify="left"
    )
    view.add_column("proxy")
    view.add_column("model")
    for h in table.columns:
        view.add_column(f"{h} d", justify="right")
    for (proxy_name, model_name), row in zip(table.index, table.to_numpy(), strict=True):
        view.add_row(str(proxy_name), str(model_name).upper(), *(f"{v:.3f}" for v in row))
    out.print(view)
    failures = report.result.failures
    out.print(
        f"{len(report.result.tickers)} tickers in {report.seconds:.0f} s"
        + (f"; forecasts written to {report.out_file}" if report.out_file else "")
        + (f"; {len(failures)} fits failed (see the log)" if failures else "")
    )


@app.command()
def train(
    tickers: TickersOption = None,
    all_tickers: Annotated[bool, typer.Option("--all", help="Every stored ticker.")] = False,
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated models: garch, lstm, gjr-garch-t, har, ewma, ... "
            "(see the README). lstm is one pooled network for all the tickers."
        ),
    ] = "garch,lstm",
    lstm_epochs: LstmEpochsOption = None,
    lstm_batch_size: LstmBatchOption = None,
    lstm_stride: LstmStrideOption = None,
    lstm_patience: LstmPatienceOption = None,
    plots: Annotated[bool, typer.Option(help="Log a forecast plot (PNG) with every run.")] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes fitting per-ticker models while one logs.")
    ] = 1,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train even a model whose latest version saw the same prices and options.",
        ),
    ] = False,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write every outcome as JSON.")
    ] = None,
    queued: Annotated[
        bool,
        typer.Option(
            "--queued",
            help="Train the tickers `volforecast monitor` queued for retraining (per-ticker "
            "models only). Any training of a ticker closes its request.",
        ),
    ] = False,
) -> None:
    """Train, evaluate, track in MLflow, register, and promote what beats production.

    Each ticker's stored prices pass the quality gate and are split 80/10/10 in time; the
    model is fitted before the last 10 % and evaluated on it (QLIKE, MSE, MAE, RMSE at 1, 5
    and 22 days). Every run is logged to MLflow with its model, registered as
    `garch_volatility_<ticker>` (the LSTM as `lstm_volatility_pooled`), made `challenger`,
    and promoted to `production` only if it converged and beats production on the same test
    window. A model whose latest version was trained on the same prices with the same
    options is skipped (--force trains it again), so re-running a day's job is safe. Exit
    code 3 when some tickers failed; the others are registered.
    """
    from volforecast.data.repositories.monitoring import MonitoringRepository  # noqa: PLC0415
    from volforecast.jobs.train import TrainConfig  # noqa: PLC0415
    from volforecast.jobs.train import train as run_train  # noqa: PLC0415
    from volforecast.registry.names import POOLED_MODEL_TYPES  # noqa: PLC0415

    _quiet_mlflow()
    if queued and (tickers is not None or all_tickers):
        _fail("--queued trains the queued tickers: give it without --tickers or --all",
              ExitCode.USAGE)  # fmt: skip
    names = tuple(m.strip().lower() for m in models.split(",") if m.strip())
    lstm_settings = _lstm_settings(
        max_epochs=lstm_epochs, batch_size=lstm_batch_size, stride=lstm_stride,
        patience=lstm_patience,
    )  # fmt: skip
    settings = _settings()
    engine = _engine(settings)
    if queued:
        # The pooled LSTM serves every ticker: a retrain on a few would not replace it.
        names = tuple(n for n in names if n not in POOLED_MODEL_TYPES)
        if not names:
            _fail("--queued retrains per-ticker models; the pooled LSTM retrains with --all",
                  ExitCode.USAGE)  # fmt: skip
        with _errors(), _database_errors(engine):
            chosen: list[str] | None = MonitoringRepository(engine).pending_retrains()
        if not chosen:
            out.print("no ticker is queued for retraining")
            _write_json(report_json, {"complete": True, "outcomes": [], "stage_seconds": {}})
            return
        out.print(f"retraining {len(chosen)} queued tickers: {', '.join(chosen)}")
    else:
        chosen = _chosen_tickers(tickers, all_tickers)
    with _errors(), _progress() as bar:
        task = bar.add_task("Training", total=None)
        try:
            report = run_train(
                engine,
                settings,
                TrainConfig(
                    models=names,
                    lstm_settings=lstm_settings,
                    plots=plots,
                    workers=workers,
                    force=force,
                ),
                chosen,
                progress=lambda label: bar.update(task, advance=1, description=label),
                on_start=lambda total: bar.update(task, total=total),
                on_epoch=_epoch_bar(bar),
            )
        except ValueError as exc:
            _fail(str(exc), ExitCode.USAGE)
        except KeyboardInterrupt as stop:
            bar.stop()
            _interrupted(_kept_message(stop))
    for settled in report.recovered:
        word = "still undecided" if settled.settlement == "undecided" else "recovered"
        out.print(
            f"[yellow]{word}[/] {settled.registered_model} v{settled.version}: "
            f"{escape(settled.reason)}"
        )
    from volforecast import listings  # noqa: PLC0415

    listings.training_runs(report.outcomes).print(out)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in report.stage_seconds.items())
    out.print(
        f"{len(report.outcomes) - len(report.failed)} of {len(report.outcomes)} done; {stages}"
    )
    _write_json(report_json, {
        "complete": report.complete, "outcomes": [vars(o) for o in report.outcomes],
        "stage_seconds": report.stage_seconds,
        "retrain_requests_closed": report.retrain_requests_closed,
        "recovered": [vars(r) for r in report.recovered],
    })  # fmt: skip
    if report.retrain_requests_closed:
        out.print(f"closed {report.retrain_requests_closed} retraining requests")
    if not report.complete:
        raise typer.Exit(
            int(ExitCode.PARTIAL if len(report.failed) < len(report.outcomes) else ExitCode.ERROR)
        )


def _interrupted(message: str) -> NoReturn:
    err.print(f"[bold yellow]interrupted:[/] {escape(message)}", highlight=False)
    raise typer.Exit(int(ExitCode.INTERRUPTED))


def _kept_message(stop: KeyboardInterrupt) -> str:
    """What an interrupted training registered (a TrainingInterrupted knows) and what it lost."""
    kept = getattr(stop, "kept", [])
    versions = sorted(
        {f"{o.registered_model} v{o.version}" + (" (production)" if o.promoted else "")
         for o in kept}
    )  # fmt: skip
    if versions:
        more = f" and {len(versions) - 10} more" if len(versions) > 10 else ""
        said = f"kept the {len(versions)} versions this run registered: "
        said += ", ".join(versions[:10]) + more
    else:
        said = "this run registered no version"
    cut_short = getattr(stop, "cut_short", None)
    if cut_short:
        said += f"; {cut_short}, was stopped and not registered"
    return said + "; versions registered before this run are untouched"


def _registry(settings: Settings) -> Any:
    from volforecast.registry.aliases import Registry  # noqa: PLC0415
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    engine = _engine(settings)
    from volforecast.data.db import ensure_schema  # noqa: PLC0415

    ensure_schema(engine)
    return Registry(connect(settings), PromotionLog(engine), settings.promotion)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document to stdout instead of a table.")
]


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Registered models with their production and challenger versions."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.registry.overview import overview  # noqa: PLC0415

    settings = _settings()
    with _errors():
        registry = _registry(settings)
        rows = overview(registry.client)
    listing, payload = listings.models(rows, settings.mlflow_tracking_uri_safe)
    if as_json:
        listings.print_json(payload)
    elif not rows:
        out.print("no registered models yet: try `volforecast train --all`")
    else:
        listing.print(out)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. garch_volatility_aapl.")],
    version: Annotated[str, typer.Argument(help="The version to put in production.")],
    reason: Annotated[str, typer.Option(help="Why, for the promotion log.")] = "promoted by hand",
) -> None:
    """Point production at a version by hand (one whose fit converged); logged."""
    settings = _settings()
    with _errors():
        event = _registry(settings).promote(name, version, reason)
    out.print(f"{name}: production v{event.previous_version or '-'} -> v{event.version}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. garch_volatility_aapl.")],
    reason: Annotated[
        str, typer.Option(help="Why, for the promotion log.")
    ] = "rolled back by hand",
) -> None:
    """Point production back at the version it served before the current one; logged."""
    settings = _settings()
    with _errors():
        event = _registry(settings).rollback(name, reason)
    out.print(f"{name}: production v{event.previous_version} -> v{event.version} (rolled back)")


@models_app.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. garch_volatility_aapl.")],
    at: Annotated[
        dt.datetime | None,
        typer.Option(help="Also say which version served at this time (UTC), e.g. 2026-11-20."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The promotion log of a model: every alias move and decision, oldest first."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415

    settings = _settings()
    with _errors():
        from volforecast.data.db import ensure_schema  # noqa: PLC0415

        engine = _engine(settings)
        ensure_schema(engine)
        promotions = PromotionLog(engine)
        events = promotions.events(name)
        served = promotions.served_on(name, at) if at is not None else None
    if not events:
        _fail(f"the promotion log has nothing for {name}", ExitCode.ERROR)
    listing, payload = listings.promotion_log(name, events, at, served)
    if as_json:
        listings.print_json(payload)
        return
    listing.print(out)
    if at is not None:
        out.print(f"served in production at {at:%Y-%m-%d %H:%M}: v{served}" if served else
                  f"nothing was in production at {at:%Y-%m-%d %H:%M}")  # fmt: skip


@app.command("mlflow")
def mlflow_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_MLFLOW_PORT, 5000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 2,
) -> None:
    """Start a real `mlflow server` on the configured backend store and artifact folder.

    The backend is VOLFORECAST_MLFLOW_BACKEND_STORE_URI (SQLite under ./var by default, or
    PostgreSQL); artifacts go to VOLFORECAST_MLFLOW_ARTIFACT_LOCATION and are served through
    the server. Point volforecast at it with
    VOLFORECAST_MLFLOW_TRACKING_URI=http://127.0.0.1:5000. Stops with Ctrl-C.
    """
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import sys  # noqa: PLC0415

    settings = _settings()
    command = server_command(settings, host, port or settings.mlflow_port, workers)
    settings.home.mkdir(parents=True, exist_ok=True)
    from volforecast.registry.relocate import relocate_store  # noqa: PLC0415

    # Experiments the embedded store created record file paths: a moved home finds them again.
    relocate_store(settings.mlflow_backend_store_uri, Path(settings.mlflow_artifact_location))
    out.print(f"starting: {' '.join(command)}")
    executable = shutil.which(command[0]) or sys.executable
    os.execv(executable, command)  # noqa: S606  (replaces this process: signals reach mlflow)


def server_command(settings: Settings, host: str, port: int, workers: int = 2) -> list[str]:
    """The `mlflow server` command line for these settings."""
    import sys  # noqa: PLC0415

    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.mlflow_backend_store_uri,
        "--artifacts-destination", settings.mlflow_artifact_location,
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface (default VOLFORECAST_API__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_API__PORT, 8000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Start the prediction API with uvicorn: /predict, /models, /health, /docs, /metrics.

    Models come from the registry's `production` aliases and are swapped without a restart
    when an alias moves (checked every VOLFORECAST_API__MODEL_REFRESH_S seconds). Set
    VOLFORECAST_API__API_KEY to require an X-API-Key header. Stops with Ctrl-C, after
    writing the predictions still queued.
    """
    import uvicorn  # noqa: PLC0415

    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        "volforecast.api.app:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # /metrics counts requests; a line per request costs throughput
    )


@app.command()
def dashboard(
    host: Annotated[
        str | None, typer.Option(help="Interface (default VOLFORECAST_DASHBOARD__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_DASHBOARD__PORT, 8501).")
    ] = None,
) -> None:
    """Start the Streamlit dashboard: forecasts, model comparison, registry, monitoring.

    It reads forecasts and models from the prediction API at VOLFORECAST_DASHBOARD__API_URL
    (start it with `volforecast serve`; without it the stored forecasts are shown) and the
    rest from the database, read-only. Open http://HOST:PORT; ?tab=Monitoring links a tab.
    """
    from volforecast.dashboard import run_streamlit, streamlit_command  # noqa: PLC0415

    settings = _settings()
    host, port = host or settings.dashboard.host, port or settings.dashboard.port
    out.print(f"dashboard on http://{host}:{port}, API at {settings.dashboard.api_url}")
    raise typer.Exit(run_streamlit(streamlit_command(port, host)))


def _production_models(settings: Settings) -> Any:
    """Every production model, loaded; exit 4 when the registry does not answer, 1 when empty."""
    from volforecast.registry.serving import ProductionModels  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    models_held = ProductionModels(connect(settings))
    try:
        models_held.refresh()
    except Exception as exc:  # noqa: BLE001  (MLflow raises many kinds)
        _fail(f"cannot read the model registry: {exc}", ExitCode.UNAVAILABLE)
    if not len(models_held) and models_held.load_errors:
        failed = models_held.load_errors
        _fail(f"none of the {len(failed)} production models could be loaded; first: "
              f"{next(iter(failed.values())).partition(': ')[2]}", ExitCode.ERROR)  # fmt: skip
    if not len(models_held):
        _fail("no model is in production yet: run `volforecast train` first", ExitCode.ERROR)
    return models_held


@app.command()
def predict(
    tickers: TickersOption = None,
    all_tickers: Annotated[
        bool, typer.Option("--all", help="Every ticker a production model serves.")
    ] = False,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated model types (default every one in production)."),
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, max=30, help="Trading days ahead.")] = 30,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The run's date: forecast from the latest close on or before it, which must "
            "be its NYSE session's. Default: today's session once it has closed (New York).",
        ),
    ] = None,
    date_from: Annotated[
        dt.datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            help="Backfill every NYSE session from this date (with --to), models loaded once.",
        ),
    ] = None,
    date_to: Annotated[
        dt.datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last date of a --from backfill."),
    ] = None,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale",
            help="Forecast from the last stored close even when it "
            "is older than the run's session (a backfill over a known gap).",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--report-json", help="Write the summary as JSON.")
    ] = None,
) -> None:
    """Forecast every production model for every ticker it serves, and store the paths.

    Each path starts at the ticker's latest close on or before the run's date (--as-of, or
    each session of --from/--to) and goes into ml.volatility_predictions, keyed by ticker,
    model, origin, step and version: running it again for the same day rewrites the same
    rows. A date whose NYSE session's close is not stored is refused with exit code 5
    (--allow-stale forecasts anyway). Exit code 3 when some tickers gave no forecast; the
    others are stored.
    """
    from volforecast.jobs.backfill import predict_sessions, run_dates  # noqa: PLC0415
    from volforecast.jobs.freshness import latest_closed_session  # noqa: PLC0415

    chosen = _chosen_tickers(tickers, all_tickers)
    if date_to is not None and date_from is None:
        _fail("--to goes with --from", ExitCode.USAGE)
    if date_from is not None and as_of is not None:
        _fail("give --as-of DATE or --from DATE --to DATE, not both", ExitCode.USAGE)
    first = date_from or as_of
    try:
        dates = run_dates(
            latest_closed_session() if first is None else first.date(),
            None if date_from is None else (date_to or date_from).date(),
        )
    except ValueError as exc:
        _fail(str(exc), ExitCode.USAGE)
    settings = _settings()
    engine = _engine(settings)
    with _errors():
        models_held = _production_models(settings)
        with _progress() as bar:
            task = bar.add_task("Predicting", total=None)
            report = predict_sessions(
                engine, settings, models_held, dates, allow_stale=allow_stale,
                model_types=None if models is None else [m for m in models.split(",") if m.strip()],
                tickers=chosen,
                horizon=horizon,
                progress=lambda label: bar.update(task, advance=1, description=label),
                on_start=lambda total: bar.update(task, total=total),
            )  # fmt: skip
    payload = report.to_dict()
    table = Table("model", "paths", "mean 1-day vol %", "min", "max", title="Stored forecasts")
    for model, figures in sorted(payload["summary"].items()):
        table.add_row(model, f"{figures['count']:.0f}", f"{figures['mean_vol_pct']:.2f}",
                      f"{figures['min_vol_pct']:.2f}", f"{figures['max_vol_pct']:.2f}")  # fmt: skip
    if report.paths:
        out.print(table)
    span = str(dates[0]) if len(dates) == 1 else f"{len(dates)} sessions, {dates[0]} to {dates[-1]}"
    out.print(f"{report.paths} paths, {report.rows} rows stored for {span} "
              f"in {report.seconds:.1f} s")  # fmt: skip
    for failure in report.failures[:20]:
        err.print(f"[yellow]{failure.ticker} {failure.model_type}:[/] {failure.message}")
    _write_json(json_out, payload)
    if report.stale:
        refused = report.stale
        where = "" if len(dates) == 1 else f"{len(refused)} of {len(dates)} dates refused; first: "
        _fail(where + refused[0].freshness.message, ExitCode.STALE)
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.paths else ExitCode.ERROR)


# --------------------------------------------------------------------------------------------
# monitoring


@monitor_app.command("run")
def monitor_run(
    tickers: TickersOption = None,
    all_tickers: Annotated[
        bool, typer.Option("--all", help="Every ticker a production model serves.")
    ] = False,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="The monitored day (default each ticker's latest close)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--report-json", help="Write the report as JSON.")
    ] = None,
) -> None:
    """Judge the production models: accuracy, drift detectors, data quality; queue retraining.

    Stored forecasts are compared with realized volatility (rolling RMSE, MAE and QLIKE into
    ml.forecast_accuracy); every production model's 1-day forecasts since it was trained go
    through the drift detectors (level shift of realized volatility, CUSUM of forecast
    errors, Kupiec at 95 and 99 %, Ljung-Box, PSI), whose statistics and alerts go into
    ml.drift_checks. A ticker with an alert, or a rolling RMSE above
    VOLFORECAST_MONITORING__RMSE_THRESHOLD_VOL_PCT (3.0), is queued for `volforecast train
    --queued`. Running it again for the same day rewrites the same rows.
    """
    from volforecast.jobs.monitor import monitor  # noqa: PLC0415

    chosen = _chosen_tickers(tickers, all_tickers)
    settings = _settings()
    engine = _engine(settings)
    with _errors(), _database_errors(engine):
        models_held = _production_models(settings)
        with _progress() as bar:
            task = bar.add_task("Monitoring", total=None)
            report = monitor(
                engine, settings, models_held, tickers=chosen,
                as_of=None if as_of is None else as_of.date(),
                progress=lambda label: bar.update(task, advance=1, description=label),
                on_start=lambda total: bar.update(task, total=total),
            )  # fmt: skip
    latest = sorted(report.alerts, key=lambda a: (a.observed_on, a.ticker, a.model_type))[-30:]
    _print_alerts(latest, title="Alerts since each model was trained (latest 30)")
    out.print(f"{report.checked} models checked, {report.accuracy_rows} accuracy rows stored, "
              f"{len(report.fired_today)} checks firing on the monitored day, "
              f"{len(report.quality_findings)} tickers with data-quality findings "
              f"in {report.seconds:.1f} s")  # fmt: skip
    if report.skipped:
        out.print(f"{len(report.skipped)} models were trained on the monitored close or later: "
                  "nothing to judge yet")  # fmt: skip
    if report.queued:
        out.print(f"queued for retraining: {', '.join(report.queued)} "
                  "(`volforecast train --queued` takes them)")  # fmt: skip
    for name, message in list(report.failures.items())[:20]:
        err.print(f"[yellow]{escape(name)}:[/] {escape(message)}")
    _write_json(json_out, report.to_dict())
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.checked else ExitCode.ERROR)


def _print_alerts(alerts: list[Any], *, title: str) -> None:
    if not alerts:
        out.print("no alerts")
        return
    table = Table("day", "ticker", "model", "detector", "statistic", "threshold", title=title,
                  title_justify="left")  # fmt: skip
    for a in alerts:
        table.add_row(str(a.observed_on), a.ticker, a.model_type, a.detector,
                      f"{a.statistic:.3g}", f"{a.threshold:.3g}")  # fmt: skip
    out.print(table)


@monitor_app.command("replay")
def monitor_replay(
    prices: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Prices to replay: Parquet or CSV in the ingest layout.",
        ),
    ],
    start: Annotated[
        dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First replayed day.")
    ],
    end: Annotated[
        dt.datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last replayed day.")
    ],
    tickers: TickersOption = None,
    model: Annotated[
        str, typer.Option(help="The model to replay (garch, gjr-garch-t, ...).")
    ] = "garch",
    retrain: Annotated[
        bool, typer.Option(help="Refit a ticker's model on the day one of its alerts fires.")
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--report-json", help="Write every alert as JSON.")
    ] = None,
) -> None:
    """Walk a past period day by day as if live, and report which alerts fired when.

    Each ticker's model is fitted on the prices before --from; then every day it forecasts
    the next day from the close, the day is observed, and the detectors judge, as
    `volforecast monitor run` does each evening; an alert refits that ticker's model on the
    data up to its day (--no-retrain keeps the first model). Nothing is written to the database.
    """
    from volforecast.data.sources import load_file  # noqa: PLC0415
    from volforecast.jobs.monitor import replay  # noqa: PLC0415

    settings = _settings()
    chosen = _split_tickers(tickers)
    with _errors():
        batch = load_file(prices)
        with _progress() as bar:
            task = bar.add_task("Replaying", total=None)
            try:
                report = replay(
                    batch.frame, settings, start=start.date(), end=end.date(), model=model,
                    tickers=chosen, retrain=retrain,
                    progress=lambda label: bar.update(task, advance=1, description=label),
                    on_start=lambda total: bar.update(task, total=total),
                )  # fmt: skip
            except ValueError as exc:
                _fail(str(exc), ExitCode.USAGE)
    _print_alerts(report.alerts[-40:], title="Alerts (latest 40)")
    per_week = report.alert_days()
    if len(per_week):
        weekly = _weekly(per_week)
        table = Table("week of", "alerts", "", title="Alerts per week", title_justify="left")
        top = max(weekly.max(), 1)
        for week, count in weekly.items():
            table.add_row(str(week), str(count), "#" * max(1, round(30 * count / top)))
        out.print(table)
    quiet = report.days - len(per_week)
    out.print(f"{report.tickers} tickers, {report.days} days replayed: {len(report.alerts)} "
              f"alerts on {len(per_week)} days ({quiet} days without one), "
              f"{len(report.retrains)} retrains, in {report.seconds:.1f} s")  # fmt: skip
    for ticker, message in list(report.failures.items())[:20]:
        err.print(f"[yellow]{escape(ticker)}:[/] {escape(message)}")
    _write_json(json_out, {
        "start": report.start.isoformat(), "end": report.end.isoformat(), "model": report.model,
        "tickers": report.tickers, "days": report.days,
        "alerts": [{"ticker": a.ticker, "detector": a.detector,
                    "observed_on": a.observed_on.isoformat(), "statistic": a.statistic,
                    "threshold": a.threshold} for a in report.alerts],
        "retrains": [[t, d.isoformat()] for t, d in report.retrains],
        "failures": report.failures,
    })  # fmt: skip
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.tickers else ExitCode.ERROR)


def _weekly(per_day: Any) -> Any:
    """Counts per day summed into weeks starting on Monday."""
    import pandas as pd  # noqa: PLC0415

    index = pd.to_datetime(pd.Index(per_day.index))
    weeks = (index - pd.to_timedelta(index.day_of_week, unit="D")).date
    return per_day.groupby(weeks).sum()


@app.command("tickers")
def list_tickers(as_json: JsonOption = False) -> None:
    """List stored tickers with their row counts and date ranges."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.data.db import ensure_schema  # noqa: PLC0415
    from volforecast.data.repositories.prices import PriceRepository  # noqa: PLC0415

    settings = _settings()
    engine = _engine(settings)
    with _errors():
        ensure_schema(engine)
        rows = PriceRepository(engine).summary()
    listing, payload = listings.tickers(rows, settings.database_url_safe)
    if as_json:
        listings.print_json(payload)
    elif not rows:
        out.print("no prices stored yet: try `volforecast ingest --sample`")
    else:
        listing.print(out)


def main() -> None:
    """Entry point of the ``volforecast`` console script."""
    app()
