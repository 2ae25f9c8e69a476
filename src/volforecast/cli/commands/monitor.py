"""``volforecast monitor``: judge the production models, or replay a past period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from volforecast.cli import ExitCode, database_errors, engine, err, errors, out, settings
from volforecast.cli.commands.predict import AllOption, production_models
from volforecast.cli.options import TickersOption, chosen_tickers, day, split_tickers
from volforecast.cli.render import counting, print_alerts, print_weekly, progress, write_json

app: typer.Typer = typer.Typer(
    help="Watch the production models: accuracy, drift alerts, the retraining queue; replay "
    "a past period.",
    no_args_is_help=True,
)


@app.command("run")
def monitor_run(
    tickers: TickersOption = None,
    all_tickers: AllOption = False,
    as_of: Annotated[
        dt.datetime | None, day(help="The monitored day (default each ticker's latest close).")
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

    chosen = chosen_tickers(tickers, all_tickers)
    given = settings()
    store = engine(given)
    with errors(), database_errors(store):
        models_held = production_models(given)
        with progress() as bar:
            report = monitor(store, given, models_held, tickers=chosen,
                             as_of=None if as_of is None else as_of.date(),
                             **counting(bar, "Monitoring"))  # fmt: skip
    latest = sorted(report.alerts, key=lambda a: (a.observed_on, a.ticker, a.model_type))[-30:]
    print_alerts(latest, title="Alerts since each model was trained (latest 30)")
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
    write_json(json_out, report.to_dict())
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.checked else ExitCode.ERROR)


@app.command("replay")
def monitor_replay(
    prices: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Prices to replay: Parquet or CSV in the ingest layout.",
        ),
    ],
    start: Annotated[dt.datetime, day("--from", help="First replayed day.")],
    end: Annotated[dt.datetime, day("--to", help="Last replayed day.")],
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

    given = settings()
    chosen = split_tickers(tickers)
    with errors():
        batch = load_file(prices)
        with progress() as bar:
            report = replay(batch.frame, given, start=start.date(), end=end.date(),
                            model=model, tickers=chosen, retrain=retrain,
                            **counting(bar, "Replaying"))  # fmt: skip
    print_alerts(report.alerts[-40:], title="Alerts (latest 40)")
    per_week = report.alert_days()
    if len(per_week):
        print_weekly(per_week)
    quiet = report.days - len(per_week)
    out.print(f"{report.tickers} tickers, {report.days} days replayed: {len(report.alerts)} "
              f"alerts on {len(per_week)} days ({quiet} days without one), "
              f"{len(report.retrains)} retrains, in {report.seconds:.1f} s")  # fmt: skip
    for ticker, message in list(report.failures.items())[:20]:
        err.print(f"[yellow]{escape(ticker)}:[/] {escape(message)}")
    write_json(json_out, report.to_dict())
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.tickers else ExitCode.ERROR)
