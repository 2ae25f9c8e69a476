"""``volforecast backtest``: a walk-forward backtest of models on a file or stored prices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from volforecast.cli import ExitCode, engine, err, errors, fail, interrupted, options, out, settings
from volforecast.cli.render import epoch_bar, print_qlike, progress
from volforecast.models.lstm.config import BACKTEST_REFIT

PricesOption = Annotated[
    Path | None,
    typer.Option("--prices", help="Prices file (CSV/Parquet, the --file layout of ingest)."),
]
FromDbOption = Annotated[
    bool, typer.Option("--from-db", help="Use the prices stored in the database.")
]
TrainEndOption = Annotated[dt.datetime, options.day(help="Last day of the first fit.")]
TestEndOption = Annotated[dt.datetime, options.day(help="Last forecast origin.")]
RefitOption = Annotated[
    int, typer.Option(min=1, help="Trading days between refits; frozen in between.")
]
ModelsOption = Annotated[
    str,
    typer.Option(
        help="Comma-separated models: garch, garch-t, gjr-garch-t, egarch, ewma, "
        "historical, har, lstm, ensemble, ... (see the README); a+b is a "
        "combination of a and b, e.g. har+lstm (see --combine)."
    ),
]
CombineOption = Annotated[
    str,
    typer.Option(
        help="How a+b weighs its members: equal, or learned (weights per step, pooled "
        "over tickers, from the forecasts realized before each refit)."
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Write every forecast (.csv or .parquet): ticker, model, origin_date, step, "
        "forecast_date, predicted_volatility (daily %).",
    ),
]
WorkersOption = Annotated[
    int, typer.Option(min=0, help="Processes for per-ticker models; 0 = one per CPU.")
]
RefitEpochsOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="LSTM: epochs of each refit after the first block's, from the previous "
        "block's weights.",
    ),
]


def backtest(
    prices: PricesOption = None,
    from_db: FromDbOption = False,
    tickers: options.TickersOption = None,
    all_tickers: Annotated[bool, typer.Option("--all", help="Every ticker available.")] = False,
    train_end: TrainEndOption = dt.datetime(2014, 12, 31),
    test_end: TestEndOption = dt.datetime(2018, 12, 31),
    refit_every: RefitOption = 21,
    models: ModelsOption = "garch,har,ewma",
    combine: CombineOption = "equal",
    horizon: Annotated[int, typer.Option(min=1, max=30, help="Steps per path.")] = 30,
    out_file: OutOption = None,
    workers: WorkersOption = 1,
    lstm_epochs: options.LstmEpochsOption = None,
    lstm_batch_size: options.LstmBatchOption = None,
    lstm_stride: options.LstmStrideOption = None,
    lstm_patience: options.LstmPatienceOption = None,
    lstm_refit_epochs: RefitEpochsOption = BACKTEST_REFIT.max_epochs,
) -> None:
    """Walk-forward backtest: forecast from every trading day of the test period.

    Each model is refitted every --refit-every trading days on all data before the refit
    and filters new days with frozen parameters in between; nothing after an origin is used
    for that origin. Prints the median across tickers of each model's QLIKE relative to
    GARCH(1,1) at 1, 5 and 22 days, on the range-based and the squared-return proxy.
    """
    from volforecast.evaluation.backtest import BacktestConfig  # noqa: PLC0415
    from volforecast.evaluation.metrics import relative_qlike  # noqa: PLC0415
    from volforecast.jobs import backtest as job  # noqa: PLC0415

    if (prices is None) == (not from_db):
        fail("give exactly one of --prices FILE and --from-db", ExitCode.USAGE)
    chosen = options.chosen_tickers(tickers, all_tickers)
    names = options.model_names(models)
    given = settings()
    with errors():
        config = BacktestConfig(
            train_end.date(), test_end.date(), names, refit_every, horizon, combine=combine,
            lstm_refit_epochs=lstm_refit_epochs, lstm_settings=dict(options.lstm_settings(
                max_epochs=lstm_epochs, batch_size=lstm_batch_size, stride=lstm_stride,
                patience=lstm_patience)),
        )  # fmt: skip
        with err.status("Reading prices..."):
            frame, market = job.load_prices(prices or engine(given), chosen)
        with progress() as bar:
            task = bar.add_task("Backtesting", total=job.progress_total(frame, config, chosen))
            try:
                report = job.run_backtest(
                    frame, config, quality=given.quality, tickers=chosen, workers=workers,
                    out=out_file, progress=lambda _: bar.advance(task), market=market,
                    on_epoch=epoch_bar(bar),
                )  # fmt: skip
            except KeyboardInterrupt:
                bar.stop()
                interrupted("the backtest stopped before its end; no forecast was written")
    if report.losses.empty:
        fail("no forecast could be evaluated (is the test period inside the data?)", ExitCode.ERROR)
    baseline = "garch" if "garch" in names else names[0]
    print_qlike(relative_qlike(report.losses, baseline), baseline)
    failures = report.result.failures
    out.print(
        f"{len(report.result.tickers)} tickers in {report.seconds:.0f} s"
        + (f"; forecasts written to {report.out_file}" if report.out_file else "")
        + (f"; {len(failures)} fits failed (see the log)" if failures else "")
    )
