"""``volforecast train``: train, evaluate, register and promote models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from volforecast.cli import (
    ExitCode,
    database_errors,
    engine,
    errors,
    fail,
    interrupted,
    options,
    out,
    quiet_mlflow,
    settings,
)
from volforecast.cli.render import counting, epoch_bar, kept_message, progress, write_json
from volforecast.models.catalog import CANDIDATES

DEFAULT_MODELS = ",".join(CANDIDATES)

if TYPE_CHECKING:
    from volforecast.jobs.train import TrainReport

ModelsOption = Annotated[
    str,
    typer.Option(
        help="Comma-separated models: garch, lstm, gjr-garch-t, har, ewma, ... "
        "(see the docs). lstm is one pooled network for all the tickers; har+lstm is built "
        "from the har and lstm versions trained on the same prices. By default every "
        "family in the running for a ticker's champion."
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="Processes that fit and publish per-ticker models (and the LSTM's CPU threads); "
        "0 = one per usable core, up to 8, for stages of 16 tickers or more.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Train even a model whose latest version saw the same prices and options."
    ),
]
QueuedOption = Annotated[
    bool,
    typer.Option(
        "--queued",
        help="Train the tickers `volforecast monitor` queued for retraining (per-ticker "
        "models only). Any training of a ticker closes its request.",
    ),
]


def train(
    tickers: options.TickersOption = None,
    all_tickers: Annotated[bool, typer.Option("--all", help="Every stored ticker.")] = False,
    models: ModelsOption = DEFAULT_MODELS,
    lstm_epochs: options.LstmEpochsOption = None,
    lstm_batch_size: options.LstmBatchOption = None,
    lstm_stride: options.LstmStrideOption = None,
    lstm_patience: options.LstmPatienceOption = None,
    plots: Annotated[bool, typer.Option(help="Log a forecast plot (PNG) with every run.")] = True,
    workers: WorkersOption = 0,
    force: ForceOption = False,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write every outcome as JSON.")
    ] = None,
    queued: QueuedOption = False,
    champions: Annotated[
        bool, typer.Option(help="Decide each trained ticker's champion afterwards.")
    ] = True,
) -> None:
    """Train, evaluate, track in MLflow, register, and promote what beats production.

    Each ticker's stored prices pass the quality gate and are split 80/10/10 in time; the
    model is fitted before the last 10 % and evaluated on it (QLIKE, MSE, MAE, RMSE at 1, 5
    and 22 days). Every run is logged to MLflow with its model, registered as
    `garch_volatility_<ticker>` (the LSTM as `lstm_volatility_pooled`), made `challenger`,
    and promoted to `production` only if it converged and beats production on the same test
    window. Then each ticker's champion, the family that answers a request naming no model,
    is decided among the candidate families (`volforecast models champion`). A model whose
    latest version was trained on the same prices with the same options is skipped (--force
    trains it again), so re-running a day's job is safe. Exit
    code 3 when some tickers failed; the others are registered.
    """
    from volforecast.jobs.monitor import per_ticker_models, queued_training  # noqa: PLC0415
    from volforecast.jobs.train import TrainConfig, TrainReport  # noqa: PLC0415
    from volforecast.jobs.train import train as run_train  # noqa: PLC0415

    quiet_mlflow()
    if queued and (tickers is not None or all_tickers):
        fail("--queued trains the queued tickers: give it without --tickers or --all",
             ExitCode.USAGE)  # fmt: skip
    names = options.model_names(models)
    given = settings()
    store = engine(given)
    chosen: list[str] | None
    if queued:
        with errors():  # a usage mistake is told before the database is touched
            per_ticker_models(names)
        with errors(), database_errors(store):
            names, chosen = queued_training(store, names)
        if not chosen:
            out.print("no ticker is queued for retraining")
            write_json(report_json, {**TrainReport([]).to_dict(), "complete": True})
            return
        out.print(f"retraining {len(chosen)} queued tickers: {', '.join(chosen)}")
    else:
        chosen = options.chosen_tickers(tickers, all_tickers)
    lstm = options.lstm_settings(max_epochs=lstm_epochs, batch_size=lstm_batch_size,
                                 stride=lstm_stride, patience=lstm_patience)  # fmt: skip
    config = TrainConfig(names, lstm, plots=plots, workers=workers or None, force=force,
                         champions=champions)  # fmt: skip
    with errors(), progress() as bar:
        try:
            report = run_train(store, given, config, chosen, on_epoch=epoch_bar(bar),
                               **counting(bar, "Training"))  # fmt: skip
        except KeyboardInterrupt as stop:
            bar.stop()
            interrupted(kept_message(stop))
    _print_trained(report)
    write_json(report_json, report.to_dict())
    if report.retrain_requests_closed:
        out.print(f"closed {report.retrain_requests_closed} retraining requests")
    if not report.complete:
        raise typer.Exit(
            int(ExitCode.PARTIAL if len(report.failed) < len(report.outcomes) else ExitCode.ERROR)
        )


def _print_trained(report: TrainReport) -> None:
    from volforecast import listings  # noqa: PLC0415

    for settled in report.recovered:
        word = "still undecided" if settled.settlement == "undecided" else "recovered"
        out.print(
            f"[yellow]{word}[/] {settled.registered_model} v{settled.version}: "
            f"{escape(settled.reason)}"
        )
    listings.training_runs(report.outcomes).print(out)
    if report.champions is not None and report.champions.choices:
        listings.champions(report.champions)[0].print(out)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in report.stage_seconds.items())
    out.print(
        f"{len(report.outcomes) - len(report.failed)} of {len(report.outcomes)} done; {stages}"
    )
