"""``volforecast predict``: forecast with the production models and store the paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from volforecast.cli import ExitCode, engine, err, errors, fail, out, settings
from volforecast.cli.options import TickersOption, chosen_tickers, day
from volforecast.cli.render import counting, print_forecasts, progress, write_json

if TYPE_CHECKING:
    from volforecast.registry.serving import ProductionModels
    from volforecast.settings import Settings

AllOption = Annotated[bool, typer.Option("--all", help="Every ticker a production model serves.")]
AsOfOption = Annotated[
    dt.datetime | None,
    day(
        help="The run's date: forecast from the latest close on or before it, which must be "
        "its NYSE session's. Default: today's session once it has closed (New York)."
    ),
]
AllowStaleOption = Annotated[
    bool,
    typer.Option(
        "--allow-stale",
        help="Forecast from the last stored close even when it "
        "is older than the run's session (a backfill over a known gap).",
    ),
]


def production_models(given: Settings) -> ProductionModels:
    """Every production model, loaded; exit 4 when the registry does not answer, 1 when empty."""
    from volforecast.registry.serving import ProductionModels  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    models_held = ProductionModels(connect(given))
    try:
        models_held.refresh()
    except Exception as exc:  # noqa: BLE001  (MLflow raises many kinds)
        fail(f"cannot read the model registry: {exc}", ExitCode.UNAVAILABLE)
    if not len(models_held) and models_held.load_errors:
        failed = models_held.load_errors
        fail(f"none of the {len(failed)} production models could be loaded; first: "
             f"{next(iter(failed.values())).partition(': ')[2]}", ExitCode.ERROR)  # fmt: skip
    if not len(models_held):
        fail("no model is in production yet: run `volforecast train` first", ExitCode.ERROR)
    return models_held


def challenger_models(given: Settings) -> ProductionModels | None:
    """The challengers waiting for live evidence, loaded; one that cannot be is left out.

    None without live days asked (none is looked for), or when they cannot be listed: the
    day goes on with production alone, said on stderr. A tracking server that does not
    answer still ends the run (exit code 4).
    """
    from volforecast.registry.deadline import unanswered  # noqa: PLC0415
    from volforecast.registry.names import CHALLENGER  # noqa: PLC0415
    from volforecast.registry.serving import ProductionModels  # noqa: PLC0415
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    if not given.promotion.min_live_days:
        return None
    waiting = ProductionModels(connect(given), alias=CHALLENGER)
    try:
        waiting.refresh()
    except Exception as exc:  # noqa: BLE001  (MLflow raises many kinds)
        if unanswered(exc) is not None:
            fail(f"cannot read the model registry: {exc}", ExitCode.UNAVAILABLE)
        err.print(f"[yellow]waiting challengers not looked for, production alone forecasts:[/] "
                  f"{type(exc).__name__}: {exc}")  # fmt: skip
        return None
    for name, why in waiting.load_errors.items():
        err.print(f"[yellow]challenger of {name} not loaded:[/] {why}")
    return waiting


def predict(
    tickers: TickersOption = None,
    all_tickers: AllOption = False,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated model types (default every one in production)."),
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, max=30, help="Trading days ahead.")] = 30,
    as_of: AsOfOption = None,
    date_from: Annotated[
        dt.datetime | None,
        day(
            "--from",
            help="Backfill every NYSE session from this date (with --to), models loaded once.",
        ),
    ] = None,
    date_to: Annotated[
        dt.datetime | None, day("--to", help="Last date of a --from backfill.")
    ] = None,
    allow_stale: AllowStaleOption = False,
    json_out: Annotated[
        Path | None, typer.Option("--report-json", help="Write the summary as JSON.")
    ] = None,
) -> None:
    """Forecast every production model for every ticker it serves, and store the paths.

    Beside each path go the model's VaR and expected shortfall (1 and 10 days, 95, 97.5 and
    99 %) into ml.risk_forecasts and its annualised term structure to a year into
    ml.term_structures. A challenger waiting for live evidence
    (VOLFORECAST_PROMOTION__MIN_LIVE_DAYS) forecasts too, stored beside production's under its
    own version.

    Each path starts at the ticker's latest close on or before the run's date (--as-of, or
    each session of --from/--to) and goes into ml.volatility_predictions, keyed by ticker,
    model, origin, step and version: running it again for the same day rewrites the same
    rows. A date whose NYSE session's close is not stored is refused with exit code 5
    (--allow-stale forecasts anyway). Exit code 3 when some tickers gave no forecast; the
    others are stored.
    """
    from volforecast.jobs.backfill import predict_sessions, run_dates  # noqa: PLC0415
    from volforecast.jobs.freshness import latest_closed_session  # noqa: PLC0415

    chosen = chosen_tickers(tickers, all_tickers)
    if date_to is not None and date_from is None:
        fail("--to goes with --from", ExitCode.USAGE)
    if date_from is not None and as_of is not None:
        fail("give --as-of DATE or --from DATE --to DATE, not both", ExitCode.USAGE)
    first = date_from or as_of
    with errors():
        dates = run_dates(
            latest_closed_session() if first is None else first.date(),
            None if date_from is None else (date_to or date_from).date(),
        )
    given = settings()
    store = engine(given)
    with errors():
        models_held = production_models(given)
        waiting = challenger_models(given)
        with progress() as bar:
            report = predict_sessions(
                store, given, models_held, dates, allow_stale=allow_stale,
                model_types=None if models is None else [m for m in models.split(",") if m.strip()],
                tickers=chosen, horizon=horizon, challengers=waiting,
                **counting(bar, "Predicting"),
            )  # fmt: skip
    payload = report.to_dict()
    if report.paths:
        print_forecasts(payload["summary"])
    span = str(dates[0]) if len(dates) == 1 else f"{len(dates)} sessions, {dates[0]} to {dates[-1]}"
    out.print(f"{report.paths} paths, {report.rows} rows and {report.risk_rows} risk rows "
              f"stored for {span} in {report.seconds:.1f} s")  # fmt: skip
    for failure in report.failures[:20]:
        err.print(f"[yellow]{failure.ticker} {failure.model_type}:[/] {failure.message}")
    write_json(json_out, payload)
    if report.stale:
        refused = report.stale
        where = "" if len(dates) == 1 else f"{len(refused)} of {len(dates)} dates refused; first: "
        fail(where + refused[0].freshness.message, ExitCode.STALE)
    if report.failures:
        raise typer.Exit(ExitCode.PARTIAL if report.paths else ExitCode.ERROR)
