"""``volforecast ingest``, ``quality`` and ``tickers``: prices in, checked and listed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from volforecast.cli import ExitCode, database_errors, engine, err, errors, fail, out, settings
from volforecast.cli.options import JsonOption, day, split_tickers
from volforecast.cli.render import print_quality, progress, show_listing, write_json

SampleOption = Annotated[
    bool,
    typer.Option(
        "--sample",
        help="The bundled sample: S&P 500 (^GSPC) and NASDAQ (^IXIC) daily OHLC, "
        "1999-2018, shipped with the arch package. Works offline.",
    ),
]
FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="A CSV or Parquet file, long layout (one row per ticker and date). Columns, "
        "case and spacing ignored: ticker|symbol, date, open, high, low, close, "
        "adj_close|adjusted_close|'adj close' (else close), volume, "
        "split_coefficient (optional, checks splits). Others are ignored.",
    ),
]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="The strptime format of --file's dates, e.g. '%d/%m/%Y' for 31/12/2018. "
        "Without it ISO dates (2018-12-31) are read, or the one known format that reads "
        "the column; dates that could be day-first or month-first are refused.",
    ),
]
YfinanceOption = Annotated[
    str | None,
    typer.Option(
        "--yfinance",
        help="Comma-separated tickers to download from Yahoo Finance (needs internet and "
        "pip install 'volforecast[yfinance]').",
    ),
]
ConfiguredOption = Annotated[
    bool,
    typer.Option(
        "--configured",
        help="The configured source (VOLFORECAST_INGEST__SOURCE): the files waiting in the "
        "drop folder (VOLFORECAST_INGEST__DROP_DIR, default VOLFORECAST_HOME/incoming; "
        "each moves to loaded/ or failed/) or Yahoo Finance. What the daily DAG runs.",
    ),
]
AsOfOption = Annotated[
    dt.datetime | None,
    day(
        help="With --configured: the run's date, whose NYSE close the freshness line checks "
        "(default today's once it has closed)."
    ),
]
ReportJsonOption = Annotated[
    Path | None, typer.Option("--report-json", help="Write the full report as JSON.")
]
ShowAllOption = Annotated[
    bool, typer.Option("--all", help="List every ticker, not only those with findings.")
]


def ingest(
    sample: SampleOption = False,
    file: FileOption = None,
    ticker: Annotated[
        str | None,
        typer.Option("--ticker", help="The ticker of a one-ticker --file without that column."),
    ] = None,
    date_format: DateFormatOption = None,
    yfinance: YfinanceOption = None,
    configured: ConfiguredOption = False,
    drop_dir: Annotated[
        Path | None,
        typer.Option("--drop-dir", help="With --configured: load the files in this folder."),
    ] = None,
    as_of: AsOfOption = None,
    start: Annotated[dt.datetime | None, day(help="First date for --yfinance.")] = None,
    end: Annotated[dt.datetime | None, day(help="Last date for --yfinance.")] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write the rejected rows to this CSV, with the check that failed."),
    ] = None,
    report_json: ReportJsonOption = None,
    show_all: ShowAllOption = False,
) -> None:
    """Load daily prices through the data-quality gate into market.stock_prices.

    Rows are upserted by (ticker, date) in chunks, so running the same load twice changes
    nothing and a load cut short can simply be run again. Bad rows are rejected and reported
    per ticker; good tickers load. Exit code 3 means partial: something was rejected.
    """
    from volforecast.data import sources  # noqa: PLC0415
    from volforecast.jobs.ingest import ingest as run_ingest  # noqa: PLC0415

    given = {"--sample": sample, "--file": file is not None, "--yfinance": yfinance is not None,
             "--configured": configured}  # fmt: skip
    if sum(given.values()) != 1:
        fail("give exactly one of --sample, --file PATH, --yfinance TICKERS, --configured",
             ExitCode.USAGE)  # fmt: skip
    if (drop_dir is not None or as_of is not None) and not configured:
        fail("--drop-dir and --as-of go with --configured", ExitCode.USAGE)
    if configured:
        _ingest_configured(drop_dir, None if as_of is None else as_of.date(), report_json)
        return
    if yfinance is not None and start is None:
        fail("--yfinance needs --start YYYY-MM-DD", ExitCode.USAGE)
    if (ticker is not None or date_format is not None) and file is None:
        fail("--ticker and --date-format go with --file", ExitCode.USAGE)
    yahoo = split_tickers(yfinance)
    chosen = settings()
    store = engine(chosen)
    with errors():
        with err.status("Reading prices..."):
            if file is not None:
                batch = sources.load_file(file, ticker=ticker, date_format=date_format)
            elif yahoo is not None and start is not None:
                batch = sources.load_yfinance(yahoo, start.date(), end.date() if end else None)
            else:
                batch = sources.load_sample()
        with progress() as bar:
            task = bar.add_task(f"Upserting {batch.source}", total=None)
            report = run_ingest(
                batch, engine=store, settings=chosen, rejects_path=rejects,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
    print_quality(report.quality, show_all=show_all)
    counts = report.counts
    out.print(
        f"[bold]{report.status}[/]: {counts.inserted:,} rows inserted, {counts.updated:,} "
        f"updated, {counts.unchanged:,} unchanged in {report.seconds:.1f} s "
        f"into {chosen.database_url_safe}; the market series refreshed for "
        f"{report.market_days:,} days"
    )
    if report.rejects_file:
        out.print(f"rejected rows written to {report.rejects_file}")
    write_json(report_json, report.to_dict())
    if report.status != "complete":
        raise typer.Exit(int(ExitCode.ERROR if report.status == "failed" else ExitCode.PARTIAL))


def _ingest_configured(
    drop_dir: Path | None, as_of: dt.date | None, report_json: Path | None
) -> None:
    """``ingest --configured``: the drop folder or Yahoo, a line per file, the freshness."""
    from volforecast.jobs.ingest_configured import ingest_configured  # noqa: PLC0415

    chosen = settings()
    if drop_dir is not None:
        chosen.ingest.source, chosen.ingest.drop_dir = "drop", drop_dir
    store = engine(chosen)
    with errors(), err.status(f"Loading from {chosen.ingest.source}..."):
        report = ingest_configured(store, chosen, as_of)
    for file in report.files:
        colour = {"loaded": "green", "partial": "yellow", "failed": "red"}[file.status]
        out.print(f"[{colour}]{file.status}[/] {escape(file.name)}: {escape(file.message)}")
    if report.source.startswith("drop") and not report.files:
        out.print(f"no price file waiting in {chosen.ingest.drop_dir}")
    for failure in [] if report.files else report.failures:  # a file's is on its line
        err.print(f"[red]failed:[/] {escape(failure)}")
    payload = report.to_dict()
    out.print(f"[bold]{report.status}[/]: {payload['inserted']:,} rows inserted, "
              f"{payload['updated']:,} updated, {payload['unchanged']:,} unchanged; "
              f"prices {report.freshness.health_detail}")  # fmt: skip
    write_json(report_json, payload)
    if report.status != "complete":
        raise typer.Exit(int(ExitCode.ERROR if report.status == "failed" else ExitCode.PARTIAL))


def quality(
    tickers: Annotated[
        str | None, typer.Option(help="Comma-separated tickers; all stored tickers by default.")
    ] = None,
    report_json: ReportJsonOption = None,
    show_all: ShowAllOption = False,
) -> None:
    """Run the data-quality gate over stored prices and print its report (deletes nothing).

    Exit code 3 when a check fails for some ticker.
    """
    from volforecast.jobs.quality import check_stored  # noqa: PLC0415

    chosen = settings()
    store = engine(chosen)
    with errors(), err.status("Checking stored prices..."):
        report = check_stored(store, chosen.quality, split_tickers(tickers))
    print_quality(report, show_all=show_all)
    write_json(report_json, report.to_dict())
    if not report.clean:
        raise typer.Exit(int(ExitCode.PARTIAL))


def list_tickers(as_json: JsonOption = False) -> None:
    """List stored tickers with their row counts and date ranges."""
    from volforecast import listings  # noqa: PLC0415
    from volforecast.data.repositories.prices import PriceRepository  # noqa: PLC0415

    chosen = settings()
    store = engine(chosen)
    with errors(), database_errors(store):
        rows = PriceRepository(store).summary()
    listing, payload = listings.tickers(rows, chosen.database_url_safe)
    show_listing(listing, payload, as_json=as_json,
                 empty="no prices stored yet: try `volforecast ingest --sample`")  # fmt: skip
